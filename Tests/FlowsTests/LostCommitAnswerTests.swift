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
@Suite(.timeLimit(.minutes(10))) struct LostCommitAnswerTests {
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
        registry.register(EndsAfterALocalStep.self)
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

    /// A flow whose end carries a journal entry not yet durable (a deferred `now`). Whether the
    /// answer of its call's commit or of its end is lost, the ended flow keeps no journal: before the fix, a lost answer of
    /// the end (the end made, the journal compacted) had the engine commit that entry again, with
    /// whatever local effects it carried (the session simulation's seed 284: a payee credited twice).
    @Test(arguments: 2...3) func anEndWhoseAnswerIsLostIsNotWrittenAgain(_ losing: Int) async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let engine = engine(database, Hooks(), losing: losing)
        try await running(engine) {
            let started = try await engine.start(EndsAfterALocalStep())
            let ended = try await engine.waitForEnd(started.id, timeout: .seconds(60))
            #expect(ended.status == .completed, "\(ended)")
            let left = try await database.flows.journal(of: started.id).filter { $0.kind != EffectKind.progress }
            #expect(left.isEmpty, "an ended flow's journal holds \(left.map(\.kind))")
        }
    }
}

extension LostCommitAnswerTests {
    /// A flow that fails, and whose failure's record fails once (the store was down a moment): the
    /// engine records it again after the hospital's delay, without a restart. Before, the record
    /// was best effort and the flow stayed `running` with no task until the node restarted (the
    /// session simulation's seed 635: the counterparty waited out its session timeout).
    @Test func aFailureWhoseRecordFailsIsRecordedAgain() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let refusals = Mutex(0)
        let store = InterceptedFlowStore(database.flows) { writes in
            let failing = writes.contains { if case .state(_, let state, _) = $0 { state.status == .failed } else { false } }
            if failing, refusals.withLock({ count in
                count += 1
                return count == 1
            }) {
                throw TransientFlowError("the database was down a moment")
            }
            return try await database.flows.commit(writes)
        }
        var registry = FlowRegistry()
        registry.register(FailingFlow.self)
        let engine = FlowEngine(store: store, registry: registry, services: FlowServices(),
                                configuration: .init(hospital: HospitalPolicy(initialDelay: .milliseconds(1), maxDelay: .milliseconds(5))),
                                logger: quietLogger)
        try await running(engine) {
            let started = try await engine.start(FailingFlow())
            let ended = try await engine.waitForEnd(started.id, timeout: .seconds(60))
            #expect(ended.status == .failed && ended.error == "nothing to do", "\(ended)")
            #expect(try await database.flows.record(started.id)?.status == .failed)
            #expect(refusals.withLock { $0 } == 2)
        }
    }
}

/// Makes one durable write (the start, with the call's entry), then records the time, which is
/// written only with its end.
struct EndsAfterALocalStep: Flow {
    static let flowName = "EndsAfterALocalStep"

    func run(_ context: FlowContext) async throws -> Int {
        let value = try await context.external("call") { _ in 1 }
        _ = try await context.now()
        return value
    }
}
