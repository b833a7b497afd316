import HawserCore
import Synchronization

/// One lease backend for the elections and administrations of every partition a process stands
/// in. On PostgreSQL a backend holds a connection of its own, and a hot-hot process of 16
/// partitions held 32 for its elections besides its pool's 8: three such processes went past a
/// default server's 100. Its tables are prepared once, and closing an election or an
/// administration leaves it open: its owner calls `closeShared()` once they have all stopped.
///
/// The partitions' rounds are group-committed: while one transaction is under way the rounds that
/// come queue, and the next transaction carries them all (`transaction(rounds:)`, each election
/// once; a second round of the same election goes in the transaction after), and a process's
/// elections run their rounds at the same moments (`LeaseElection`), so they come together. A
/// process of 16 partitions made 16 transactions of seven round trips each every renew interval,
/// and on PostgreSQL its idle elections alone kept a tenth of a core busy (BENCHMARKS.md).
public final class SharedLeaseBackend: LeaseBackend {
    private let base: any LeaseBackend
    private let prepared = Atomic<Bool>(false)
    private let queue: BatchQueue<Queued, Void>

    /// A round and whether its caller gave up on it (its deadline passed): a round given up on
    /// never runs later, for it would act for an election that has moved on.
    private struct Queued: Sendable {
        var round: LeaseRound
        var abandoned: Abandoned
    }
    private final class Abandoned: Sendable {
        let flag = Atomic<Bool>(false)
        var isSet: Bool { flag.load(ordering: .acquiring) }
    }

    /// `maxRoundsPerTransaction`: the most rounds one transaction carries.
    public init(_ base: any LeaseBackend, maxRoundsPerTransaction: Int = 64) {
        self.base = base
        queue = BatchQueue(thread: "hawser-leases", limit: maxRoundsPerTransaction, size: { _ in 1 }) { queued in
            let live = queued.indices.filter { !queued[$0].abandoned.isSet }
            var results = [Result<Void, any Error>](repeating: .failure(CancellationError()), count: queued.count)
            for (i, result) in zip(live, await Self.transactions(live.map { queued[$0].round }, base)) { results[i] = result }
            return results
        }
    }

    public func prepare() async throws {
        guard !prepared.load(ordering: .acquiring) else { return }
        try await base.prepare()
        prepared.store(true, ordering: .releasing)
    }

    public func transaction<T: Sendable>(election: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T)) async throws -> T {
        let abandoned = Abandoned()
        return try await withTaskCancellationHandler {
            try await LeaseRound.value(election: election, body) { round in
                try await queue.submit(Queued(round: LeaseRound(election: election) { state in
                    // Given up on after its transaction began, but before it decided: it writes nothing.
                    guard !abandoned.isSet else { throw CancellationError() }
                    return try round.decide(state)
                }, abandoned: abandoned))
            }
        } onCancel: {
            abandoned.flag.store(true, ordering: .releasing)
        }
    }

    /// How many rounds wait for the transaction under way to end (tests wait for a batch to form).
    var waiting: Int { queue.waiting }

    /// Left open for the other users; see `closeShared()`.
    public func close() async {}

    /// Closes the backend, once every election and administration on it has stopped.
    public func closeShared() async { await base.close() }

    /// `rounds` in as few transactions as each election once a transaction allows, in order.
    private static func transactions(_ rounds: [LeaseRound], _ base: any LeaseBackend) async -> [Result<Void, any Error>] {
        var results = [Result<Void, any Error>?](repeating: nil, count: rounds.count)
        var left = Array(rounds.indices)
        while !left.isEmpty {
            var elections = Set<String>()
            let (now, later) = left.reduce(into: ([Int](), [Int]())) { split, i in
                if elections.insert(rounds[i].election).inserted { split.0.append(i) } else { split.1.append(i) }
            }
            for (i, result) in zip(now, await base.transaction(rounds: now.map { rounds[$0] })) { results[i] = result }
            left = later
        }
        return results.map { $0! }
    }
}
