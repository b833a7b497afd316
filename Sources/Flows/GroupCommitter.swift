/// Group commit for the flow store: while one transaction is being made durable, writes from
/// other flows queue; the next transaction carries all of them. No task of its own: the first
/// waiting writer is handed the lead and commits the queue (leader/follower).
actor GroupCommitter {
    private enum Turn { case done(Result<FlowRecord?, any Error>), lead }
    private struct Waiting {
        var write: FlowWrite
        var continuation: CheckedContinuation<Turn, Never>
    }

    private let store: any FlowStore
    private let maxWritesPerCommit: Int
    private var queue: [Waiting] = []
    private var committing = false
    /// Transactions and writes committed, for metrics and tests.
    private(set) var transactions = 0
    private(set) var writes = 0

    init(store: any FlowStore, maxWritesPerCommit: Int) {
        self.store = store
        self.maxWritesPerCommit = maxWritesPerCommit
    }

    /// Commits `write` durably (with whatever else is queued) and returns what the store returned for it.
    func commit(_ write: FlowWrite) async throws -> FlowRecord? {
        let turn: Turn
        if committing {
            turn = await withCheckedContinuation { queue.append(Waiting(write: write, continuation: $0)) }
            if case .done(let result) = turn { return try result.get() }
        } else {
            committing = true
        }
        // This writer leads: commit its own write and everything queued so far.
        let followers = take()
        let batch = [write] + followers.map(\.write)
        let results: [Result<FlowRecord?, any Error>]
        do {
            // The leader may be a flow being killed or shut down; its cancellation must not
            // abort a transaction that carries other flows' writes, so the commit runs apart.
            let store = self.store
            let stored = try await Task { try await store.commit(batch) }.value
            results = stored.map { .success($0) }
        } catch {
            results = batch.map { _ in .failure(error) }
        }
        transactions += 1
        writes += batch.count
        for (waiting, result) in zip(followers, results.dropFirst()) { waiting.continuation.resume(returning: .done(result)) }
        // Hand the lead to the next queued writer, or stop.
        if queue.isEmpty {
            committing = false
        } else {
            queue.removeFirst().continuation.resume(returning: .lead)
        }
        return try results[0].get()
    }

    private func take() -> [Waiting] {
        let count = min(queue.count, max(0, maxWritesPerCommit - 1))
        let taken = Array(queue.prefix(count))
        queue.removeFirst(count)
        return taken
    }
}
