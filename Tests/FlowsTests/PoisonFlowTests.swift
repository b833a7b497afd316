import Embedded
import Flows
import HawserCore
import HawserTestSupport
import Testing

/// The replay marker (`StartupReplay`): a flow whose replay at start-up took the process down is
/// parked at the next start-up instead of replayed. A process that dies is stood for by an engine
/// that is left running, never stopped, while a second engine opens the same database.
@Suite(.timeLimit(.minutes(10))) struct PoisonFlowTests {
    /// Calls the outside (a durable write), reports progress, then waits at the gate without
    /// writing anything: to the engine, a flow that crashes the process there looks like this.
    struct StuckFlow: Flow {
        static let flowName = "Stuck"
        func run(_ context: FlowContext) async throws -> Int {
            let hooks = context.services.service(Hooks.self)!
            _ = try await context.external("call") { _ in
                try hooks.call("call")
                return 1
            }
            try await context.progress("stuck")
            return try await context.effect("wait", durability: .deferred) { _ in
                try await hooks.gate.pass()
                return 2
            }
        }
    }

    func engine(_ harness: EngineHarness) -> FlowEngine {
        harness.engine { $0.register(StuckFlow.self); $0.register(StepsFlow.self) }
    }

    /// Starts `count` of `flow` on a first engine and stops it (as a node stops) while they wait at the gate.
    func startAndStop<F: Flow>(_ flow: F, count: Int = 1, in directory: String) async throws -> [FlowID] {
        let first = try EngineHarness(directory: directory)
        let engine = engine(first)
        return try await running(engine) {
            var ids = [FlowID]()
            for _ in 0..<count { ids.append(try await engine.start(flow).id) }
            for _ in 0..<count { await first.hooks.gate.reached() }
            return ids
        }
    }

    /// Runs a second engine whose replay of the flow reaches the gate again; returns it running
    /// (the caller's "crash" is not to stop it) with the task that runs it.
    func replayUntilTheGate(in directory: String) async throws -> (EngineHarness, Task<Void, any Error>) {
        let harness = try EngineHarness(directory: directory)
        let engine = engine(harness)
        let service = Task { try await engine.run() }
        await harness.hooks.gate.reached()
        return (harness, service)
    }

    @Test func aFlowWhoseReplayTookTheProcessDownIsParkedAtTheNextStart() async throws {
        let directory = try TemporaryDirectory()
        let id = try await startAndStop(StuckFlow(), in: directory.path)[0]
        let (crashed, service) = try await replayUntilTheGate(in: directory.path)
        #expect(try await crashed.database.flows.replayMarkers() == [id])

        let third = try EngineHarness(directory: directory.path)
        let engine = engine(third)
        let record = try await running(engine) { try await engine.waitForEnd(id) }
        #expect(record.status == .hospitalised)
        #expect(record.retryAt == nil)
        #expect(record.error == StartupReplay.parkedReason)
        #expect(third.hooks.calls("call") == 0)
        #expect(try await third.database.flows.replayMarkers().isEmpty)
        service.cancel()
        _ = await service.result
    }

    @Test func aReplayThatWritesAgainClearsItsMarker() async throws {
        let directory = try TemporaryDirectory()
        // The gated step is an external call: the flow writes what it has before it.
        let id = try await startAndStop(StepsFlow(gated: true), in: directory.path)[0]
        let (crashed, service) = try await replayUntilTheGate(in: directory.path)
        #expect(try await crashed.database.flows.replayMarkers().isEmpty)

        let third = try EngineHarness(directory: directory.path)
        third.hooks.gate.release()
        let engine = engine(third)
        #expect(try await running(engine) { try await engine.waitForEnd(id) }.status == .completed)
        service.cancel()
        _ = await service.result
    }

    @Test func aNodeThatStopsCleanlyLeavesNoMarker() async throws {
        let directory = try TemporaryDirectory()
        let id = try await startAndStop(StuckFlow(), in: directory.path)[0]
        let (second, service) = try await replayUntilTheGate(in: directory.path)
        service.cancel()
        _ = await service.result
        #expect(try await second.database.flows.replayMarkers().isEmpty)

        let third = try EngineHarness(directory: directory.path)
        third.hooks.gate.release()
        let engine = engine(third)
        #expect(try await running(engine) { try await engine.waitForEnd(id) }.status == .completed)
    }

    @Test func aResumedFlowIsMarkedLikeAReplay() async throws {
        let directory = try TemporaryDirectory()
        let id = try await startAndStop(StuckFlow(), in: directory.path)[0]
        let (crashed, service) = try await replayUntilTheGate(in: directory.path)
        let second = try EngineHarness(directory: directory.path)
        let engine = engine(second)
        try await running(engine) {
            #expect(try await engine.waitForEnd(id).status == .hospitalised)
            service.cancel()
            _ = await service.result
            // The operator resumes it; it takes the node down again (it waits at the gate).
            _ = try await engine.resume(id)
            await second.hooks.gate.reached()
            #expect(try await crashed.database.flows.replayMarkers() == [id])
        }
    }

    @Test func anOperatorParksOrKillsAFlowThatIsNotRunning() async throws {
        let directory = try TemporaryDirectory()
        let ids = try await startAndStop(StuckFlow(), count: 2, in: directory.path)
        let (parked, killed) = (ids[0], ids[1])
        // An engine that runs nothing, as the offline tool makes.
        let offline = try EngineHarness(directory: directory.path)
        let engine = engine(offline)
        #expect(try await engine.park(parked, reason: "why").status == .hospitalised)
        #expect(try await engine.kill(killed).status == .killed)
        #expect(try await offline.database.flows.journal(of: killed).map(\.kind) == [EffectKind.progress])
        await #expect(throws: FlowEngineError.finished(killed, .killed)) { try await engine.park(killed, reason: "why") }

        let next = try EngineHarness(directory: directory.path)
        let restarted = self.engine(next)
        try await running(restarted) {
            let record = try await restarted.waitForEnd(parked)
            #expect(record.error == "why")
            #expect(next.hooks.calls("call") == 0)
        }
    }
}
