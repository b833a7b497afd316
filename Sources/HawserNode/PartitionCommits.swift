import Coordination
import Flows
import HawserCore

/// The group commit of a hot-hot process's partitions: while one transaction is under way, the
/// writes of every partition's flows queue, and the next transaction carries them all, proving
/// each partition's fence (`NodeFlowStore.commit(_:proving:)`). The partitions' engines hand each
/// flow's writes straight here (`PartitionFlowStore.batchesCommits`). Without it a process serving
/// 16 partitions made 16 transactions where a single node makes one, at half a single node's
/// throughput; with a queue per engine in front of this one, a write waited for its engine's
/// batch and then for the next shared transaction (BENCHMARKS.md).
///
/// A batch whose fence is released is refused on its own (`not_owner`), before the transaction.
/// A transaction the database refuses (one partition's fence moved on: `stale_epoch`; one write's
/// content: `FlowWriteRefused`) is made again batch by batch, so that only the batch at fault
/// fails and its flow hears why.
final class PartitionCommits: Sendable {
    /// One partition's batch: its engine's writes and the partition's fence.
    private struct Batch: Sendable {
        var writes: [FlowWrite]
        var fence: WriteFence
    }
    private let queue: BatchQueue<Batch, [FlowRecord?]>

    init(store: any NodeFlowStore, maxWritesPerCommit: Int) {
        queue = BatchQueue(thread: "hawser-partitions", limit: maxWritesPerCommit, size: { $0.writes.count }) { batches in
            await Self.commit(batches, store)
        }
    }

    /// Commits `writes`, fenced by `fence`, with whatever other partitions' batches are queued.
    func commit(_ writes: [FlowWrite], fencedBy fence: WriteFence) async throws -> [FlowRecord?] {
        try await queue.submit(Batch(writes: writes, fence: fence))
    }

    private static func commit(_ batches: [Batch], _ store: any NodeFlowStore) async -> [Result<[FlowRecord?], any Error>] {
        var results = [Result<[FlowRecord?], any Error>?](repeating: nil, count: batches.count)
        var proofs: [String: CommitFence] = [:]
        var ready: [Int] = []
        for (i, batch) in batches.enumerated() {
            do {
                let epoch = try batch.fence.epochForWrite()
                proofs[batch.fence.resource] = CommitFence(resource: batch.fence.resource, epoch: epoch.value)
                ready.append(i)
            } catch {
                results[i] = .failure(error)
            }
        }
        do {
            let stored = try await store.commit(ready.flatMap { batches[$0].writes }, proving: proofs.values.sorted { $0.resource < $1.resource })
            var offset = 0
            for i in ready {
                let range = offset..<(offset + batches[i].writes.count)
                offset = range.upperBound
                results[i] = .success(Array(stored[range]))
            }
        } catch where ready.count > 1 {
            for i in ready { results[i] = await alone(batches[i], store) }
        } catch {
            for i in ready { results[i] = .failure(error) }
        }
        return results.map { $0! }
    }

    /// One partition's batch in a transaction of its own.
    private static func alone(_ batch: Batch, _ store: any NodeFlowStore) async -> Result<[FlowRecord?], any Error> {
        do {
            let epoch = try batch.fence.epochForWrite()
            return .success(try await store.commit(batch.writes, proving: [CommitFence(resource: batch.fence.resource, epoch: epoch.value)]))
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
    var batchesCommits: Bool { true }
    func record(_ id: FlowID) async throws -> FlowRecord? { try await fenced.record(id) }
    func record(clientRequestId: String) async throws -> FlowRecord? { try await fenced.record(clientRequestId: clientRequestId) }
    func journal(of id: FlowID) async throws -> [JournalEntry] { try await fenced.journal(of: id) }
    func list(_ query: FlowQuery) async throws -> [FlowRecord] { try await fenced.list(query) }
    func resumable() async throws -> [FlowRecord] { try await fenced.resumable() }
    func replayMarkers() async throws -> Set<FlowID> { try await fenced.replayMarkers() }
    func clearReplayMarkers(_ ids: [FlowID]) async throws { try await fenced.clearReplayMarkers(ids) }
}
