import Embedded
import Flows
import HawserTestSupport
import Sessions
import Testing

/// StepsFlow's code after a change guarded by a patch marker: it now reads the time first.
struct PatchedStepsFlow: Flow {
    static let flowName = "Steps"
    var gated = false

    func run(_ context: FlowContext) async throws -> String {
        if try await context.patched("read-time-first") { _ = try await context.now() }
        return try await StepsFlow(gated: gated).run(context)
    }
}

/// Sends two messages in a session.
struct SendingFlow: Flow {
    static let flowName = "Sending"
    func run(_ context: FlowContext) async throws -> Int {
        let session = try await context.initiateFlow(with: "O=Bob", as: "O=Alice", by: Self.self)
        try await context.send(Array("hello".utf8), on: session)
        try await context.send(Array("again".utf8), on: session)
        return 2
    }
}

@Suite(.timeLimit(.minutes(10))) struct EvolutionAndOutboxTests {
    @Test func aPatchedChangeLetsOldFlowsFinishOnTheOldPath() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let old = harness.engine()
        let id = try await running(old) {
            let started = try await old.start(StepsFlow(gated: true))
            await harness.hooks.gate.reached()
            return started.id
        }
        // The node is upgraded while the flow waits; the new code is behind a patch marker. The
        // journals are read at the gate: an ended flow keeps only its progress steps.
        let upgradedHarness = try EngineHarness(directory: directory.path)
        let upgraded = upgradedHarness.engine { $0.register(PatchedStepsFlow.self) }
        try await running(upgraded) {
            await upgradedHarness.hooks.gate.reached()
            #expect(try await upgradedHarness.database.flows.journal(of: id).map(\.kind) == ["random", "progress", "external"])
            // A flow started after the upgrade takes the new path and records the marker.
            let fresh = try await upgraded.start(PatchedStepsFlow(gated: true)).id
            await upgradedHarness.hooks.gate.reached()
            #expect(try await upgradedHarness.database.flows.journal(of: fresh).map(\.kind)
                    == [EffectKind.patch, "now", "random", "progress", "external"])
            upgradedHarness.hooks.gate.release()
            let resumed = try await upgraded.waitForEnd(id)
            #expect(resumed.status == .completed, "\(resumed.error ?? "")")
            #expect(try await upgraded.waitForEnd(fresh).status == .completed)
        }
    }

    @Test func sentMessagesAreWrittenToTheOutboxOnce() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let engine = harness.engine { $0.register(SendingFlow.self) }
        let id = try await running(engine) {
            try await engine.waitForEnd(try await engine.start(SendingFlow()).id).id
        }
        // The session's initiate, the two messages, and the close the flow's end sends.
        let outbox = try await harness.database.sessions.outbound(limit: 10, excluding: [])
        let session = "\(id.rawValue)/0"
        #expect(outbox.map(\.messageId) == (1...4).map { "\(session)|O=Alice|\($0)" })
        let messages = try outbox.map { try SessionMessage.decode($0.payload) }
        #expect(messages.map(\.kind) == [.initiate, .data, .data, .close])
        #expect(messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["", "hello", "again", ""])
        #expect(outbox.allSatisfy { $0.recipient == "O=Bob" && $0.session == session })
    }
}
