import Flows
import HawserCore
import HawserTestSupport
import Synchronization
import Testing

/// An operator's resume while the engine resumes the unfinished flows at start-up: the start-up
/// resume read the flow as running, and launched it again after it had ended (seen in the suite: a
/// kill of the completed flow then met that second run and recorded it killed).
struct ResumeDuringStartUpTests {
    /// Holds the start-up read of the resumable flows before and after it is made, and counts the
    /// reads of each flow's journal (one for every launch of the flow).
    final class HeldResumableRead: Sendable {
        let beforeRead = Gate()
        let afterRead = Gate()
        private let journalReads = Mutex<[FlowID: Int]>([:])

        /// `base`, its start-up read held and its journal reads counted here.
        func store(over base: any FlowStore) -> InterceptedFlowStore {
            InterceptedFlowStore(base, journal: { id in self.journalReads.withLock { $0[id, default: 0] += 1 } }, resumable: { read in
                try await self.beforeRead.pass()
                let found = try await read()
                try await self.afterRead.pass()
                return found
            }, commit: { try await base.commit($0) })
        }

        func journalReads(of id: FlowID) -> Int { journalReads.withLock { $0[id] ?? 0 } }
    }

    @Test func aFlowResumedByAnOperatorMeanwhileIsNotLaunchedAgain() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let id = try await KillWhileNotarisingTests.parkedAfterAskingTheNotary(harness)

        let held = HeldResumableRead()
        let answering = HeldNotary(failFirst: false)
        let second = harness.engine(store: held.store(over: harness.database.flows), notary: answering) { $0.register(NotarisingFlow.self) }
        try await running(second) {
            await held.beforeRead.reached()
            _ = try await second.resume(id)
            await answering.gate.reached()  // running, in the store too
            held.beforeRead.release()
            await held.afterRead.reached()  // the start-up read has seen it running
            answering.gate.release()
            #expect(try await second.waitForEnd(id, timeout: .seconds(60)).status == .completed)
            held.afterRead.release()
            try await eventually("the engine has resumed") { second.hasResumed }
            #expect(held.journalReads(of: id) == 1, "launched once, by the operator's resume")
            await #expect(throws: FlowEngineError.finished(id, .completed)) { try await second.kill(id) }
        }
    }

    /// A flow killed after the start-up read saw it running stays killed: the read's plan does
    /// not bring it back to life.
    @Test func aFlowKilledMeanwhileIsNotLaunched() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let first = harness.engine()
        let id = try await running(first) {
            let started = try await first.start(StepsFlow(gated: true))
            await harness.hooks.gate.reached()
            return started.id  // stopped while running: it stays running in the store
        }

        let held = HeldResumableRead()
        let second = harness.engine(store: held.store(over: harness.database.flows))
        try await running(second) {
            await held.beforeRead.reached()
            held.beforeRead.release()
            await held.afterRead.reached()  // the start-up read has seen it running
            #expect(try await second.kill(id).status == .killed)
            held.afterRead.release()
            try await eventually("the engine has resumed") { second.hasResumed }
            #expect(held.journalReads(of: id) == 0, "never launched")
            #expect(try await second.record(id)?.status == .killed)
        }
    }
}
