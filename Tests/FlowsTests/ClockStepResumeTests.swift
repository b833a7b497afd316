import Embedded
import Flows
import HawserCore
import HawserTestSupport
import Synchronization
import Testing

/// Which unfinished flows an engine resumes does not depend on the clock: an engine resumes every
/// flow it did not start itself, whatever the creation times say after a clock step.
@Suite(.timeLimit(.minutes(3))) struct ClockStepResumeTests {
    /// The machine's clock moved by `offset` microseconds, which a test steps.
    final class SteppedClock: FlowClock {
        let offset = Mutex<Int64>(0)
        func now() -> Instant {
            Instant(microsecondsSinceEpoch: SystemFlowClock().now().microsecondsSinceEpoch + offset.withLock { $0 })
        }
        func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
    }

    func engine(_ harness: EngineHarness, clock: SteppedClock) -> FlowEngine {
        var registry = FlowRegistry()
        registry.register(StepsFlow.self)
        var services = FlowServices(clock: clock)
        services.add(harness.hooks, as: Hooks.self)
        return FlowEngine(store: harness.database.flows, registry: registry, services: services, logger: quietLogger)
    }

    /// The node stops while a flow waits; its clock is stepped back an hour before it starts
    /// again. Before the fix the new engine resumed only flows created before it was made, by its
    /// clock, and so never this one.
    @Test func aFlowCreatedAheadOfTheClockIsResumedAfterARestart() async throws {
        let directory = try TemporaryDirectory()
        let first = try EngineHarness(directory: directory.path)
        let clock = SteppedClock()
        let engine = engine(first, clock: clock)
        let id = try await running(engine) {
            let id = try await engine.start(StepsFlow(gated: true)).id
            await first.hooks.gate.reached()
            return id
        }
        #expect(try await first.database.flows.record(id)?.status == .running)

        clock.offset.withLock { $0 = -3_600_000_000 }
        let second = try EngineHarness(directory: directory.path)
        second.hooks.gate.release()
        let restarted = self.engine(second, clock: clock)
        try await running(restarted) {
            let ended = try await restarted.waitForEnd(id, timeout: .seconds(60))
            #expect(ended.status == .completed, "\(ended)")
        }
    }

    /// The clock is stepped back after the engine is made and before a flow starts, which is
    /// still running when the engine resumes. Before the fix the flow looked older than the engine
    /// and was taken for one to resume: it got a replay marker (a crash then would park it).
    @Test func aFlowStartedAfterAClockStepBackIsNotResumedByItsOwnEngine() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let clock = SteppedClock()
        let engine = engine(harness, clock: clock)
        clock.offset.withLock { $0 = -3_600_000_000 }
        let id = try await engine.start(StepsFlow(gated: true)).id
        await harness.hooks.gate.reached()
        try await running(engine) {
            try await eventually("the engine resumed") { engine.hasResumed }
            #expect(try await harness.database.flows.replayMarkers().isEmpty)
            harness.hooks.gate.release()
            let ended = try await engine.waitForEnd(id, timeout: .seconds(60))
            #expect(ended.status == .completed, "\(ended)")
            #expect(harness.hooks.calls("call") == 1)
        }
    }
}

