import HawserCore

/// Group commit for the flow store: while one transaction is being made durable, writes from
/// other flows queue; the next transaction carries all of them (`BatchQueue`). The transactions
/// run one after another on a thread of their own: run as tasks in the cooperative pool, each
/// commit waited in its queue behind the flows' work, several times per transaction, and under
/// load a commit round took several times the transaction itself.
///
/// A store that batches its callers itself (`FlowStore.batchesCommits`) gets each flow's writes
/// straight away: a second queue in front of its own would make a write wait for this queue's
/// transaction and then for the store's next one.
final class GroupCommitter: Sendable {
    private let store: any FlowStore
    private let queue: BatchQueue<[FlowWrite], [FlowRecord?]>
    private let wroteOutbox: @Sendable (Set<String>) -> Void

    /// `wroteOutbox` is called after a transaction that wrote outbox messages, with their
    /// recipients: the link manager delivers them now rather than at its next poll.
    init(store: any FlowStore, maxWritesPerCommit: Int, wroteOutbox: @escaping @Sendable (Set<String>) -> Void = { _ in }) {
        self.store = store
        self.wroteOutbox = wroteOutbox
        queue = BatchQueue(thread: "hawser-commits", limit: maxWritesPerCommit, size: \.count) { batch in
            await Self.commit(batch[...], store, wroteOutbox)
        }
    }

    func commit(_ write: FlowWrite) async throws -> FlowRecord? {
        try await commit([write]).first ?? nil
    }

    /// Commits `writes` durably and together (with whatever else is queued); returns what the
    /// store returned for each. Store failures become `TransientFlowError`s for the hospital.
    /// Not cancellable: the transaction may carry other flows' writes.
    func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?] {
        guard store.batchesCommits else { return try await queue.submit(writes) }
        return try await Self.commit([writes], store, wroteOutbox)[0].get()
    }

    /// How many commits wait for the transaction under way to end (tests wait for a batch to form).
    var waiting: Int { queue.waiting }

    /// The engine's last write (`FlowStore.clearReplayMarkers`), on the commit thread.
    func clearReplayMarkers(_ ids: [FlowID]) async throws {
        try await queue.onThread { [store] in try await store.clearReplayMarkers(ids) }
    }

    /// Commits the waiters' writes in one transaction and returns each waiter's share of the
    /// answer. A transaction the store refused for what a write holds (`FlowWriteRefused`) is cut
    /// in halves, each committed on its own, down to the waiters whose writes the store refuses:
    /// only they fail, not every flow that shared their transaction (one refused write among n
    /// waiters costs about 2·log₂ n transactions more). Any other failure fails the whole batch:
    /// the store cannot commit, and each flow's hospital takes it from there.
    private static func commit(_ batch: ArraySlice<[FlowWrite]>, _ store: any FlowStore,
                               _ wroteOutbox: @Sendable (Set<String>) -> Void) async -> [Result<[FlowRecord?], any Error>] {
        let stored: [FlowRecord?]
        do {
            stored = try await store.commit(batch.flatMap { $0 })
        } catch is FlowWriteRefused where batch.count > 1 {
            let middle = batch.startIndex + batch.count / 2
            return await commit(batch[..<middle], store, wroteOutbox) + commit(batch[middle...], store, wroteOutbox)
        } catch {
            let failure = TransientFlowError("the flow store could not commit: \(error)", cause: error)
            return batch.map { _ in .failure(failure) }
        }
        let recipients = Set(batch.flatMap { $0.flatMap(\.recipients) })
        if !recipients.isEmpty { wroteOutbox(recipients) }
        var offset = 0
        return batch.map { writes in
            let range = offset..<(offset + writes.count)
            offset = range.upperBound
            return .success(Array(stored[range]))
        }
    }
}

extension FlowWrite {
    /// The recipients of the messages the write puts in the outbox.
    var recipients: [String] {
        switch self {
        case .journal(_, _, let effects), .state(_, _, let effects):
            effects.compactMap { if case .outbox(let message) = $0 { message.recipient } else { nil } }
        case .start, .compact, .replayMarker, .notaryAsked: []
        }
    }
}
