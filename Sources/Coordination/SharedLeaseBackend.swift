import Synchronization

/// One lease backend for the elections and administrations of every partition a process stands
/// in. On PostgreSQL a backend holds a connection of its own, and a hot-hot process of 16
/// partitions held 32 for its elections besides its pool's 8: three such processes went past a
/// default server's 100. The partitions take turns on the one connection (a round is one short
/// transaction, bounded like any other), its tables are prepared once, and closing an election or
/// an administration leaves it open: its owner calls `closeShared()` once they have all stopped.
public final class SharedLeaseBackend: LeaseBackend {
    private let base: any LeaseBackend
    private let prepared = Atomic<Bool>(false)

    public init(_ base: any LeaseBackend) { self.base = base }

    public func prepare() async throws {
        guard !prepared.load(ordering: .acquiring) else { return }
        try await base.prepare()
        prepared.store(true, ordering: .releasing)
    }

    public func transaction<T: Sendable>(election: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T)) async throws -> T {
        try await base.transaction(election: election, body)
    }

    /// Left open for the other users; see `closeShared()`.
    public func close() async {}

    /// Closes the backend, once every election and administration on it has stopped.
    public func closeShared() async { await base.close() }
}
