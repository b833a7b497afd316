import Coordination

/// Which process serves a hot-hot node's partition, for an RPC worker: it stands in no election,
/// so it reads the partition's election when asked (a request about a running flow, which only
/// the process running it serves). A read opens its own connection; these requests are rare.
struct PartitionOwners: Sendable {
    /// The node's election (`ha.election`, resolved); partition k's is `<election>.p<k>`.
    let election: ElectionSettings

    /// The first address the leader of `partition`'s election advertises; nil while none leads,
    /// or when the election cannot be read within its request time-out.
    func url(of partition: Int) async -> String? {
        let settings = election.partition(partition)
        let snapshot = try? await withDeadline(.milliseconds(settings.requestTimeoutMs), "reading the election of partition \(partition)") {
            try await settings.snapshot()
        }
        guard let snapshot, let leader = snapshot.leader else { return nil }
        return snapshot.candidates.first { $0.id == leader }?.addresses.first
    }
}
