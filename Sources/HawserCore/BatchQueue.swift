import Synchronization

/// The queue of a group commit: what is submitted while a batch is being processed waits, and the
/// next batch takes everything that waits, up to `limit` units (at least one item). Batches run
/// one after another on a thread of their own (`DedicatedThread`): a store that blocks its caller
/// (SQLite) blocks that thread, not the cooperative pool, and a batch never waits in the pool's
/// queue behind the work that submits. The flows' group committer and a hot-hot process's
/// partition commits batch with it.
public final class BatchQueue<Item: Sendable, Output: Sendable>: Sendable {
    private struct Waiting {
        var item: Item
        var continuation: CheckedContinuation<Output, any Error>
    }
    private struct State {
        var queue: [Waiting] = []
        var draining = false
    }

    private let state = Mutex(State())
    private let thread: DedicatedThread
    private let limit: Int
    private let size: @Sendable (Item) -> Int
    private let process: @Sendable ([Item]) async -> [Result<Output, any Error>]

    /// `thread`: its name; `size`: an item's units; `process`: one batch, returning each item's
    /// result in order.
    public init(thread name: String, limit: Int, size: @escaping @Sendable (Item) -> Int,
                process: @escaping @Sendable ([Item]) async -> [Result<Output, any Error>]) {
        thread = DedicatedThread(name: name)
        self.limit = limit
        self.size = size
        self.process = process
    }

    deinit { thread.stop() }

    /// Waits for `item`'s batch and returns its result. Not cancellable: the batch carries others' items.
    public func submit(_ item: Item) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { state in
                state.queue.append(Waiting(item: item, continuation: continuation))
                defer { state.draining = true }
                return !state.draining
            }
            if start { Task(executorPreference: thread) { await self.drain() } }
        }
    }

    /// How many items wait for the batch under way to end (tests wait for a batch to form).
    public var waiting: Int { state.withLock { $0.queue.count } }

    /// Runs `body` on the queue's thread (beside the batches, not in the pool).
    public func onThread<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task(executorPreference: thread) { try await body() }.value
    }

    /// Processes what waits, batch after batch, until nothing does.
    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Waiting] in
                var count = 0
                let taken = state.queue.prefix { waiting in
                    defer { count += size(waiting.item) }
                    return count == 0 || count + size(waiting.item) <= limit
                }
                state.queue.removeFirst(taken.count)
                if taken.isEmpty { state.draining = false }
                return Array(taken)
            }
            guard !batch.isEmpty else { return }
            for (waiting, result) in zip(batch, await process(batch.map(\.item))) { waiting.continuation.resume(with: result) }
        }
    }
}
