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
    final class HeldResumableStore: FlowStore {
        let base: any FlowStore
        let beforeRead = Gate()
        let afterRead = Gate()
        private let journalReads = Mutex<[FlowID: Int]>([:])

        init(_ base: any FlowStore) { self.base = base }

        func journalReads(of id: FlowID) -> Int { journalReads.withLock { $0[id] ?? 0 } }

        var batchesCommits: Bool { base.batchesCommits }
        func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?] { try await base.commit(writes) }
        func record(_ id: FlowID) async throws -> FlowRecord? { try await base.record(id) }
        func record(clientRequestId: String) async throws -> FlowRecord? { try await base.record(clientRequestId: clientRequestId) }
        func journal(of id: FlowID) async throws -> [JournalEntry] {
            journalReads.withLock { $0[id, default: 0] += 1 }
            return try await base.journal(of: id)
        }
        func list(_ query: FlowQuery) async throws -> [FlowRecord] { try await base.list(query) }
        func resumable() async throws -> [FlowRecord] {
            try await beforeRead.pass()
            let found = try await base.resumable()
            try await afterRead.pass()
            return found
        }
        func replayMarkers() async throws -> Set<FlowID> { try await base.replayMarkers() }
        func hasAskedNotary(_ id: FlowID) async throws -> Bool { try await base.hasAskedNotary(id) }
        func clearReplayMarkers(_ ids: [FlowID]) async throws { try await base.clearReplayMarkers(ids) }
    }

    @Test func aFlowResumedByAnOperatorMeanwhileIsNotLaunchedAgain() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let id = try await KillWhileNotarisingTests.parkedAfterAskingTheNotary(harness)

        let store = HeldResumableStore(harness.database.flows)
        let answering = HeldNotary(failFirst: false)
        let second = harness.engine(store: store, notary: answering) { $0.register(NotarisingFlow.self) }
        try await running(second) {
            await store.beforeRead.reached()
            _ = try await second.resume(id)
            await answering.gate.reached()  // running, in the store too
            store.beforeRead.release()
            await store.afterRead.reached()  // the start-up read has seen it running
            answering.gate.release()
            #expect(try await second.waitForEnd(id, timeout: .seconds(60)).status == .completed)
            store.afterRead.release()
            try await eventually("the engine has resumed") { second.hasResumed }
            #expect(store.journalReads(of: id) == 1, "launched once, by the operator's resume")
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

        let store = HeldResumableStore(harness.database.flows)
        let second = harness.engine(store: store)
        try await running(second) {
            await store.beforeRead.reached()
            store.beforeRead.release()
            await store.afterRead.reached()  // the start-up read has seen it running
            #expect(try await second.kill(id).status == .killed)
            store.afterRead.release()
            try await eventually("the engine has resumed") { second.hasResumed }
            #expect(store.journalReads(of: id) == 0, "never launched")
            #expect(try await second.record(id)?.status == .killed)
        }
    }
}
