import Flows
import HawserTestSupport
import Testing

/// A flow's event stream resumed after an event id (`FlowEventCursor`): the rest of the stream,
/// nothing lost and nothing repeated.
@Suite(.timeLimit(.minutes(10))) struct EventResumeTests {
    static let flow = FlowID("f")

    @Test func cursorsReadBackAsWritten() {
        for text in ["-1", "0", "7", "7:hospitalised:2", "-1:completed:0", "12:running:3"] {
            #expect(FlowEventCursor(text)?.description == text)
        }
        // Numbers as the OpenAPI pattern writes them: 1 to 18 digits, no sign but `-1`.
        for text in ["", "-2", "x", "7:", "7:done:1", "7:running", "7:running:-1", "7:running:1:2", "1e3", " 7", "+3", "-01",
                     "3:completed:+1", "1234567890123456789", "9223372036854775807"] {
            #expect(FlowEventCursor(text) == nil, "\(text)")
        }
    }

    @Test func aProgressStepIsNewOnlyPastTheCursorAndAStatusOnlyIfAnotherOne() {
        let seen = FlowEventCursor(progress: 4, status: .hospitalised, attempts: 1)
        #expect(!seen.isNew(.progress(Self.flow, sequence: 4, step: "x")))
        #expect(seen.isNew(.progress(Self.flow, sequence: 5, step: "x")))
        #expect(!seen.isNew(.status(Self.flow, .hospitalised, error: "e", attempts: 1)))
        #expect(seen.isNew(.status(Self.flow, .hospitalised, error: "e", attempts: 2)))
        #expect(seen.isNew(.status(Self.flow, .running, error: nil, attempts: 1)))
        // A step comes only while running: it replaces the status seen.
        #expect(seen.advanced(past: .progress(Self.flow, sequence: 6, step: "x")) == FlowEventCursor(progress: 6))
        #expect(seen.advanced(past: .status(Self.flow, .completed, error: nil, attempts: 1))
                == FlowEventCursor(progress: 4, status: .completed, attempts: 1))
    }

    /// The ids of a flow's whole stream, and the events.
    static func stream(_ engine: FlowEngine, _ id: FlowID, after cursor: FlowEventCursor = .start) async throws
        -> [(event: FlowEvent, id: FlowEventCursor)] {
        var out: [(FlowEvent, FlowEventCursor)] = []
        var position = cursor
        for await event in try await engine.events(of: id, after: cursor) {
            position = position.advanced(past: event)
            out.append((event, position))
        }
        return out
    }

    @Test func aStreamResumedAfterAnyOfItsEventsIsTheRestOfIt() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(StepsFlow())
            let whole = try await Self.stream(engine, started.id)
            #expect(whole.map { $0.event.step ?? $0.event.status?.rawValue } == ["one", "two", "completed"])
            #expect(whole.map(\.id.description) == ["1", "3", "3:completed:0"])
            for (index, seen) in whole.enumerated() {
                let rest = try await Self.stream(engine, started.id, after: seen.id)
                #expect(rest.map(\.event) == whole.dropFirst(index + 1).map(\.event), "after \(seen.id)")
            }
        }
    }

    /// The rule node.md gives for a running flow: `running` is sent only to an id holding another
    /// status or other attempts; an id of a step alone, or of `running` itself, already says so.
    @Test func aRunningFlowsStatusIsSentOnlyToAnIdOfAnotherStatus() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(StepsFlow(gated: true))
            await harness.hooks.gate.reached()  // running, after step "one" (sequence 1)
            let expected: [(String, [String])] = [
                ("-1", ["one", "two", "completed"]),
                ("1", ["two", "completed"]),
                ("-1:running:0", ["one", "two", "completed"]),
                ("1:running:2", ["running", "two", "completed"]),
                ("1:completed:0", ["running", "two", "completed"]),
            ]
            var streams: [AsyncStream<FlowEvent>] = []
            for (id, _) in expected { streams.append(try await engine.events(of: started.id, after: try #require(FlowEventCursor(id)))) }
            harness.hooks.gate.release()
            for ((id, events), stream) in zip(expected, streams) {
                var heard: [String] = []
                for await event in stream { heard.append(event.step ?? event.status?.rawValue ?? "?") }
                #expect(heard == events, "after \(id)")
            }
        }
    }

    @Test func aStreamResumedWithAnOlderStatusHearsTheCurrentOne() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine()
        try await running(engine) {
            let started = try await engine.start(StepsFlow())
            _ = try await Self.stream(engine, started.id)
            // The observer last saw the flow in the hospital, before its second step.
            let rest = try await Self.stream(engine, started.id, after: FlowEventCursor(progress: 1, status: .hospitalised, attempts: 1))
            #expect(rest.map { $0.event.step ?? $0.event.status?.rawValue } == ["two", "completed"])
        }
    }
}
