import HawserCore
import Logging

/// Keeps the partitions of a partitioned election balanced over its workers (`PartitionPlan`) by
/// setting each partition's preferred master; the partition's leader hands over once that worker
/// has stood for the hold-down (`PreferredMasterPolicy`), as it would for an operator's `prefer`.
///
/// Each partition is an election of its own, with its own epoch and fence, so safety never rests
/// on the balancer: it only says where leadership should go. It is deterministic, so two processes
/// that run it at once for a moment (a leadership of partition 0 changing hands) write the same.
public struct PartitionBalancer: Sendable {
    /// The partitions' elections, in partition order.
    public let partitions: [any ElectionAdministration]

    public init(partitions: [any ElectionAdministration]) { self.partitions = partitions }

    /// One pass: reads every partition's election and sets the preferred masters the plan changes.
    /// The workers are the candidates standing in every partition; a partition's owner now is its
    /// preferred master if that one stands, else its leader. Returns the partitions moved, with
    /// their new preferred masters.
    @discardableResult
    public func pass() async throws -> [Int: String] {
        // All at once: on a process's shared lease backend they then share one transaction.
        let snapshots = try await concurrently(partitions.count) { [partitions] k in try await partitions[k].snapshot() }
        let standing = snapshots.map { Set($0.candidates.map(\.id)) }
        let workers = standing.dropFirst().reduce(standing.first ?? []) { $0.intersection($1) }
        guard !workers.isEmpty else { return [:] }
        let owners: [String?] = zip(snapshots, standing).map { snapshot, standing in
            if let preferred = snapshot.preferred, standing.contains(preferred) { return preferred }
            return snapshot.leader.flatMap { standing.contains($0) ? $0 : nil }
        }
        var moved: [Int: String] = [:]
        for (partition, owner) in PartitionPlan.balance(owners: owners, workers: workers).enumerated()
        where owner != snapshots[partition].preferred {
            guard let owner else { continue }
            try await partitions[partition].setPreferred(owner)
            moved[partition] = owner
        }
        return moved
    }

    /// Runs a pass every `interval` while `isLeading` (this process leads partition 0) until
    /// cancelled; each non-empty move goes to `moved`, each failed pass to the log (the next may
    /// succeed: balancing is never needed for safety).
    public func run(every interval: Duration, isLeading: @Sendable () -> Bool, logger: Logger,
                    moved: @Sendable ([Int: String]) -> Void = { _ in }) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled, isLeading() else { continue }
            do {
                let changes = try await pass()
                if !changes.isEmpty { moved(changes) }
            } catch {
                logger.warning("balancing the partitions failed", metadata: ["problem": "\(error)"])
            }
        }
    }
}
