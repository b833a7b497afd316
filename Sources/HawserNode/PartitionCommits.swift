import Coordination
import Flows
import HawserCore
import Synchronization

/// The group commit of a hot-hot process's partitions. Each partition's engine batches its own
/// flows' writes (its `GroupCommitter`); here, while one transaction is under way, the batches of
/// the other partitions queue, and the next transaction carries them all, proving each one's
/// partition fence (`NodeFlowStore.commit(_:proving:)`). Without it a process serving 16
/// partitions made 16 transactions where a single node makes one, at half a single node's
/// throughput (BENCHMARKS.md).
///
/// A batch whose fence is released is refused on its own (`not_owner`), before the transaction.
/// A transaction the database refuses (one partition's fence moved on: `stale_epoch`; one write's
/// content: `FlowWriteRefused`) is made again batch by batch, so that only the batch at fault
/// fails and its engine hears why.
final class PartitionCommits: Sendable {
    private struct Waiting {
        var writes: [FlowWrite]
        var fence: WriteFence
        var continuation: CheckedContinuation<[FlowRecord?], any Error>
    }
    private struct State {
        var queue: [Waiting] = []
        var draining = false
    }

    private let store: any NodeFlowStore
    private let maxWritesPerCommit: Int
    private let state = Mutex(State())
    /// The transactions run here: a SQLite store blocks its caller's thread.
    private let thread = DedicatedThread(name: "hawser-partition-commits")

    init(store: any NodeFlowStore, maxWritesPerCommit: Int) {
        self.store = store
        self.maxWritesPerCommit = maxWritesPerCommit
    }

    deinit { thread.stop() }

    /// Commits `writes`, fenced by `fence`, with whatever other partitions' batches are queued.
    func commit(_ writes: [FlowWrite], fencedBy fence: WriteFence) async throws -> [FlowRecord?] {
        try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { state in
                state.queue.append(Waiting(writes: writes, fence: fence, continuation: continuation))
                defer { state.draining = true }
                return !state.draining
            }
            if start { Task(executorPreference: thread) { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Waiting] in
                var count = 0
                let taken = state.queue.prefix { waiting in
                    defer { count += waiting.writes.count }
                    return count == 0 || count + waiting.writes.count <= maxWritesPerCommit
                }
                state.queue.removeFirst(taken.count)
                if taken.isEmpty { state.draining = false }
                return Array(taken)
            }
            guard !batch.isEmpty else { return }
            for (waiting, result) in zip(batch, await commit(batch)) { waiting.continuation.resume(with: result) }
        }
    }

    private func commit(_ batch: [Waiting]) async -> [Result<[FlowRecord?], any Error>] {
        var results = [Result<[FlowRecord?], any Error>?](repeating: nil, count: batch.count)
        var proofs: [String: CommitFence] = [:]
        var ready: [Int] = []
        for (i, waiting) in batch.enumerated() {
            do {
                let epoch = try waiting.fence.epochForWrite()
                proofs[waiting.fence.resource] = CommitFence(resource: waiting.fence.resource, epoch: epoch.value)
                ready.append(i)
            } catch {
                results[i] = .failure(error)
            }
        }
        do {
            let stored = try await store.commit(ready.flatMap { batch[$0].writes }, proving: proofs.values.sorted { $0.resource < $1.resource })
            var offset = 0
            for i in ready {
                let range = offset..<(offset + batch[i].writes.count)
                offset = range.upperBound
                results[i] = .success(Array(stored[range]))
            }
        } catch where ready.count > 1 {
            for i in ready { results[i] = await alone(batch[i]) }
        } catch {
            for i in ready { results[i] = .failure(error) }
        }
        return results.map { $0! }
    }

    /// One partition's batch in a transaction of its own.
    private func alone(_ waiting: Waiting) async -> Result<[FlowRecord?], any Error> {
        do {
            let epoch = try waiting.fence.epochForWrite()
            return .success(try await store.commit(waiting.writes, proving: [CommitFence(resource: waiting.fence.resource, epoch: epoch.value)]))
        } catch {
            return .failure(error)
        }
    }
}

/// A hot-hot partition's flow store: its commits go to the process's `PartitionCommits` under the
/// partition's fence; reads and the ending term's cleanup to the partition's own fenced store.
struct PartitionFlowStore: FlowStore {
    let fenced: any FlowStore
    let fence: WriteFence
    let commits: PartitionCommits

    func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?] { try await commits.commit(writes, fencedBy: fence) }
    func record(_ id: FlowID) async throws -> FlowRecord? { try await fenced.record(id) }
    func record(clientRequestId: String) async throws -> FlowRecord? { try await fenced.record(clientRequestId: clientRequestId) }
    func journal(of id: FlowID) async throws -> [JournalEntry] { try await fenced.journal(of: id) }
    func list(_ query: FlowQuery) async throws -> [FlowRecord] { try await fenced.list(query) }
    func resumable() async throws -> [FlowRecord] { try await fenced.resumable() }
    func replayMarkers() async throws -> Set<FlowID> { try await fenced.replayMarkers() }
    func clearReplayMarkers(_ ids: [FlowID]) async throws { try await fenced.clearReplayMarkers(ids) }
}
