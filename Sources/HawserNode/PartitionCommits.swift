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
/// A transaction the database refuses for what one batch holds (its partition's fence moved on:
/// `stale_epoch`; a write's content: `FlowWriteRefused`) is cut in halves, each committed on its
/// own, down to the batches at fault, as the group committer does: only they fail, and their flows
/// hear why. Any other failure (the database unreachable) fails every batch at once: trying each
/// again alone would only wait out the same failure once per flow.
final class PartitionCommits: Sendable {
    /// One flow's writes and the fence of its partition.
    private struct Batch: Sendable {
        var writes: [FlowWrite]
        var fence: WriteFence
    }
    /// A batch with its fence at the epoch the commit proves.
    private struct Proven {
        var writes: [FlowWrite]
        var proof: CommitFence
    }
    private let queue: BatchQueue<Batch, [FlowRecord?]>

    /// `commit`: the store's commit proving several fences (`NodeFlowStore.commit(_:proving:)`).
    init(maxWritesPerCommit: Int, commit: @escaping @Sendable ([FlowWrite], [CommitFence]) async throws -> [FlowRecord?]) {
        queue = BatchQueue(thread: "hawser-partitions", limit: maxWritesPerCommit, size: { $0.writes.count }) { batches in
            await Self.commit(batches, commit)
        }
    }

    /// How many batches wait for the transaction under way to end (tests wait for a batch to form).
    var waiting: Int { queue.waiting }

    /// Commits `writes`, fenced by `fence`, with whatever other partitions' writes are queued.
    func commit(_ writes: [FlowWrite], fencedBy fence: WriteFence) async throws -> [FlowRecord?] {
        try await queue.submit(Batch(writes: writes, fence: fence))
    }

    private static func commit(_ batches: [Batch], _ store: @Sendable ([FlowWrite], [CommitFence]) async throws -> [FlowRecord?])
        async -> [Result<[FlowRecord?], any Error>] {
        var results = [Result<[FlowRecord?], any Error>?](repeating: nil, count: batches.count)
        var ready: [(index: Int, batch: Proven)] = []
        for (i, batch) in batches.enumerated() {
            do {
                let proof = CommitFence(resource: batch.fence.resource, epoch: try batch.fence.epochForWrite().value)
                ready.append((i, Proven(writes: batch.writes, proof: proof)))
            } catch {
                results[i] = .failure(error)
            }
        }
        for (i, result) in zip(ready.map(\.index), await transaction(ready.map(\.batch)[...], store)) { results[i] = result }
        return results.map { $0! }
    }

    /// `batches` in one transaction, proving each one's fence; halved on a refusal.
    private static func transaction(_ batches: ArraySlice<Proven>, _ store: @Sendable ([FlowWrite], [CommitFence]) async throws -> [FlowRecord?])
        async -> [Result<[FlowRecord?], any Error>] {
        guard !batches.isEmpty else { return [] }
        do {
            let proofs = Set(batches.map(\.proof)).sorted { $0.resource < $1.resource }
            let stored = try await store(batches.flatMap(\.writes), proofs)
            var offset = 0
            return batches.map { batch in
                let range = offset..<(offset + batch.writes.count)
                offset = range.upperBound
                return .success(Array(stored[range]))
            }
        } catch where batches.count > 1 && isRefusal(error) {
            let middle = batches.startIndex + batches.count / 2
            return await transaction(batches[..<middle], store) + transaction(batches[middle...], store)
        } catch {
            return batches.map { _ in .failure(error) }
        }
    }

    /// A refusal of what one batch holds, rather than of the transaction as a whole.
    private static func isRefusal(_ error: any Error) -> Bool {
        if error is FlowWriteRefused { return true }
        if case CoordinationError.staleEpoch = error { return true }
        return false
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
    func hasAskedNotary(_ id: FlowID) async throws -> Bool { try await fenced.hasAskedNotary(id) }
    func clearReplayMarkers(_ ids: [FlowID]) async throws { try await fenced.clearReplayMarkers(ids) }
}
