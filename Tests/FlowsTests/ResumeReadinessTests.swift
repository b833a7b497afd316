import Embedded
import Flows
import HawserTestSupport
import Testing

/// `FlowEngine.hasResumed`, which a node's `/health/ready` waits for: an engine that finds
/// unfinished flows at start is not ready until every one of them runs again.
@Suite(.timeLimit(.minutes(10))) struct ResumeReadinessTests {
    @Test func anEngineIsNotResumedUntilItsUnfinishedFlowsRunAgain() async throws {
        let directory = try TemporaryDirectory()
        // A first engine stops (as a node stops) while its flow waits at the hooks' gate.
        let first = try EngineHarness(directory: directory.path)
        let engine = first.engine()
        let id = try await running(engine) {
            let id = try await engine.start(StepsFlow(gated: true)).id
            await first.hooks.gate.reached()
            try await eventually("an engine with nothing to resume resumed") { engine.hasResumed }
            return id
        }
        #expect(try await first.database.flows.record(id)?.status == .running)

        // The next engine on the same database is not resumed while it reads the flow's journal.
        let second = try EngineHarness(directory: directory.path)
        // Its journal reads (made while resuming) wait at a gate.
        let gate = Gate()
        let flows = second.database.flows
        let store = InterceptedFlowStore(flows, journal: { _ in try await gate.pass() }) { try await flows.commit($0) }
        var registry = FlowRegistry()
        registry.register(StepsFlow.self)
        var services = FlowServices()
        services.add(second.hooks, as: Hooks.self)
        let next = FlowEngine(store: store, registry: registry, services: services, logger: quietLogger)
        let service = Task { try await next.run() }
        defer { service.cancel() }
        await gate.reached()
        #expect(!next.hasResumed, "resuming is under way")
        gate.release()
        await second.hooks.gate.reached()  // the flow runs again, from its journal
        try await eventually("the engine resumed") { next.hasResumed }
        second.hooks.gate.release()
        #expect(try await next.waitForEnd(id).status == .completed)
    }
}
