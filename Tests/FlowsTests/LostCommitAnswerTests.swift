import Embedded
import Flows
import HawserCore
import HawserTestSupport
import Synchronization
import Testing

/// A commit whose answer is lost: the database committed it and then crashed (or the connection
/// broke) before saying so, and the engine saw a failure. Its retry must take the journal the
/// store holds, not run the flow's effects again (a duplicate journal entry is refused for ever,
/// and an external call would be made twice).
@Suite struct LostCommitAnswerTests {
    /// Forwards to `base`; the commit numbered `losing` (counted from 1) is made, then reported failed.
    static func losing(_ base: any FlowStore, _ losing: Int) -> any FlowStore {
        let count = Mutex(0)
        return InterceptedFlowStore(base) { writes in
            let stored = try await base.commit(writes)
            let number = count.withLock { count in
                count += 1
                return count
            }
            if number == losing { throw TransientFlowError("the connection closed before the commit's answer") }
            return stored
        }
    }

    func engine(_ database: SQLiteNodeDatabase, _ hooks: Hooks, losing: Int) -> FlowEngine {
        var registry = FlowRegistry()
        registry.register(StepsFlow.self)
        var services = FlowServices()
        services.add(hooks, as: Hooks.self)
        return FlowEngine(store: Self.losing(database.flows, losing), registry: registry, services: services,
                          configuration: .init(hospital: HospitalPolicy(initialDelay: .milliseconds(1), maxDelay: .milliseconds(5),
                                                                        maxAttempts: 5)),
                          logger: quietLogger)
    }

    /// A start whose answer is lost fails for its caller, but the flow it made runs: the caller's
    /// repeated start (same client request id) names it and sees it end, and it runs once.
    @Test(arguments: [false, true]) func aStartWhoseAnswerIsLostStillRunsOnce(_ waiting: Bool) async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let hooks = Hooks()
        let engine = engine(database, hooks, losing: 1)
        let arguments = try FlowCoding.encode(StepsFlow())
        try await running(engine) {
            func start() async throws -> FlowRecord {
                if waiting {
                    return try await engine.startAndWait(flowName: StepsFlow.flowName, arguments: arguments, clientRequestId: "lost",
                                                         timeout: .seconds(60)).record
                }
                return try await engine.start(flowName: StepsFlow.flowName, arguments: arguments, clientRequestId: "lost")
            }
            await #expect(throws: TransientFlowError.self) { _ = try await start() }
            let again = try await start()
            let ended = try await engine.waitForEnd(again.id, timeout: .seconds(60))
            #expect(ended.status == .completed, "\(ended)")
            #expect(hooks.calls("call") == 1)
            #expect(try await database.flows.counts() == [.completed: 1])
        }
    }

    /// StepsFlow commits four times: its start, its journal before the call, the call's result, and
    /// its end. Whichever answer is lost, the flow completes and the call is made once.
    @Test(arguments: 2...4) func aRetryAfterALostAnswerReplaysWhatWasCommitted(_ losing: Int) async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let hooks = Hooks()
        let engine = engine(database, hooks, losing: losing)
        try await running(engine) {
            let started = try await engine.start(StepsFlow())
            let ended = try await engine.waitForEnd(started.id, timeout: .seconds(60))
            #expect(ended.status == .completed, "\(ended)")
            #expect(hooks.calls("call") == 1)
            #expect(try await database.flows.record(started.id)?.status == .completed)
        }
    }
}
