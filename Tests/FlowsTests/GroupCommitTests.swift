import Embedded
@testable import Flows
import HawserCore
import HawserTestSupport
import Synchronization
import Testing

/// A group commit carries many flows' writes in one transaction; one flow's write that the store
/// refuses must fail that flow alone.
@Suite(.timeLimit(.minutes(2))) struct GroupCommitTests {
    func record(_ id: String) -> FlowRecord {
        FlowRecord(id: FlowID(id), clientRequestId: nil, flowName: "F", arguments: Array("{}".utf8), createdAt: Instant(microsecondsSinceEpoch: 1),
                   updatedAt: Instant(microsecondsSinceEpoch: 1))
    }

    func entry(_ sequence: Int) -> JournalEntry {
        JournalEntry(sequence: sequence, kind: EffectKind.record, descriptor: "step \(sequence)", result: [UInt8(sequence)])
    }

    /// Flow a's journal entry 0 is already durable (its first commit's answer was lost, say); its
    /// second try shares a transaction with flow b's entry and flow c's start. Before the fix all
    /// three failed; now a fails, and b's and c's writes are durable.
    @Test func aRefusedWriteFailsOnlyItsOwnFlow() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        _ = try await database.flows.commit([.start(record("a")), .journal(FlowID("a"), entry(0), []),
                                             .start(record("b"))])
        // The first commit through the committer waits at the gate, so the three that follow queue
        // up behind it and go to the store in one batch.
        let gate = Gate()
        let batches = Mutex([[FlowWrite]]())
        let store = InterceptedFlowStore(database.flows) { writes in
            let first = batches.withLock { batches in
                batches.append(writes)
                return batches.count == 1
            }
            if first { try await gate.pass() }
            return try await database.flows.commit(writes)
        }
        let committer = GroupCommitter(store: store, maxWritesPerCommit: 1_000)
        let blocker = Task { try await committer.commit(.start(record("x"))) }
        await gate.reached()
        let a = Task { try await committer.commit([.journal(FlowID("a"), entry(0), [])]) }
        try await eventually("a's commit queued") { committer.waiting == 1 }
        let b = Task { try await committer.commit([.journal(FlowID("b"), entry(0), [])]) }
        try await eventually("b's commit queued") { committer.waiting == 2 }
        let c = Task { try await committer.commit([.start(record("c")), .journal(FlowID("c"), entry(0), [])]) }
        try await eventually("c's commit queued") { committer.waiting == 3 }
        gate.release()
        _ = try await blocker.value

        await #expect(throws: TransientFlowError.self) { _ = try await a.value }
        _ = try await b.value
        #expect(try await c.value == [record("c"), nil])
        #expect(batches.withLock { $0.count } > 2, "the three commits went to the store together, then apart")
        #expect(batches.withLock { $0[1].count } == 4)
        #expect(try await database.flows.journal(of: FlowID("a")) == [entry(0)])
        #expect(try await database.flows.journal(of: FlowID("b")) == [entry(0)])
        #expect(try await database.flows.journal(of: FlowID("c")) == [entry(0)])
    }

    /// A store that cannot commit at all fails every waiter of the batch, once: the batch is not
    /// cut up to try each alone.
    @Test func aStoreThatCannotCommitFailsTheBatchOnce() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let gate = Gate()
        let calls = Mutex(0)
        let store = InterceptedFlowStore(database.flows) { writes in
            let call = calls.withLock { calls in
                calls += 1
                return calls
            }
            if call == 1 {
                try await gate.pass()
                return try await database.flows.commit(writes)
            }
            throw Unavailable()
        }
        let committer = GroupCommitter(store: store, maxWritesPerCommit: 1_000)
        let blocker = Task { try await committer.commit(.start(record("x"))) }
        await gate.reached()
        let a = Task { try await committer.commit(.start(record("a"))) }
        try await eventually("a's commit queued") { committer.waiting == 1 }
        let b = Task { try await committer.commit(.start(record("b"))) }
        try await eventually("b's commit queued") { committer.waiting == 2 }
        gate.release()
        _ = try await blocker.value
        await #expect(throws: TransientFlowError.self) { _ = try await a.value }
        await #expect(throws: TransientFlowError.self) { _ = try await b.value }
        #expect(calls.withLock { $0 } == 2)
    }

    struct Unavailable: Error {}
}
