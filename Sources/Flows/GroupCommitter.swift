/// Group commit for the flow store: while one transaction is being made durable, writes from
/// other flows queue; the next transaction carries all of them. No task of its own: the first
/// waiting caller is handed the lead and commits the queue (leader/follower).
actor GroupCommitter {
    private enum Turn { case done(Result<[FlowRecord?], any Error>), lead }
    private struct Waiting {
        var writes: [FlowWrite]
        var continuation: CheckedContinuation<Turn, Never>
    }

    private let store: any FlowStore
    private let maxWritesPerCommit: Int
    private var queue: [Waiting] = []
    private var committing = false

    init(store: any FlowStore, maxWritesPerCommit: Int) {
        self.store = store
        self.maxWritesPerCommit = maxWritesPerCommit
    }

    func commit(_ write: FlowWrite) async throws -> FlowRecord? {
        try await commit([write]).first ?? nil
    }

    /// Commits `writes` durably and together (with whatever else is queued); returns what the
    /// store returned for each. Store failures become `TransientFlowError`s for the hospital.
    func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?] {
        if committing {
            let turn = await withCheckedContinuation { queue.append(Waiting(writes: writes, continuation: $0)) }
            if case .done(let result) = turn { return try result.get() }
        } else {
            committing = true
        }
        // This caller leads: commit its own writes and what is queued, up to the limit.
        var followers = [Waiting]()
        var count = writes.count
        while let next = queue.first, count + next.writes.count <= maxWritesPerCommit {
            followers.append(queue.removeFirst())
            count += next.writes.count
        }
        let batch = writes + followers.flatMap(\.writes)
        let result: Result<[FlowRecord?], any Error>
        do {
            // The leader may be a flow being killed or shut down; its cancellation must not
            // abort a transaction that carries other flows' writes, so the commit runs apart.
            let store = self.store
            result = .success(try await Task { try await store.commit(batch) }.value)
        } catch {
            result = .failure(TransientFlowError("the flow store could not commit: \(error)"))
        }
        var offset = writes.count
        for waiting in followers {
            let slice = result.map { Array($0[offset..<(offset + waiting.writes.count)]) }
            offset += waiting.writes.count
            waiting.continuation.resume(returning: .done(slice))
        }
        // Hand the lead to the next queued caller, or stop.
        if queue.isEmpty {
            committing = false
        } else {
            queue.removeFirst().continuation.resume(returning: .lead)
        }
        return try result.map { Array($0[0..<writes.count]) }.get()
    }
}
