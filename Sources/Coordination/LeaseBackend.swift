import Synchronization

/// A database that holds lease elections (PostgreSQL, SQLite). It only reads and writes rows;
/// every rule is in `LeaseRules`, applied by the callers inside `transaction`, so all lease
/// databases behave alike. Time is the database's clock, never the caller's.
public protocol LeaseBackend: Sendable {
    /// Creates the tables if they are missing (and adds columns that older versions lacked).
    func prepare() async throws
    /// One transaction: read the election's state (its lease row created free if missing and
    /// locked until the end, its candidates, the database's time), let `body` decide, write what
    /// it returns, commit, and hand back its result. A `body` that throws rolls back.
    func transaction<T: Sendable>(election: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T)) async throws -> T
    /// Several elections' rounds in one transaction, each election at most once: every round reads
    /// its election's state and decides its writes as in `transaction(election:_:)`. A round whose
    /// `decide` throws writes nothing and gets its error; the others commit. One result per round,
    /// in order; a transaction that fails fails every round. (By default, one `transaction(election:_:)`
    /// each: right for a backend that wraps another, whose every round must pass through it.)
    func transaction(rounds: [LeaseRound]) async -> [Result<Void, any Error>]
    /// Closes connections; the backend may not be used afterwards.
    func close() async
}

/// One election's part of a lease transaction: what it decides to write from what it read.
public struct LeaseRound: Sendable {
    public var election: String
    public var decide: @Sendable (LeaseState) throws -> LeaseWrites

    public init(election: String, decide: @escaping @Sendable (LeaseState) throws -> LeaseWrites) {
        self.election = election
        self.decide = decide
    }

    /// `body` as a round carried by `carry` (which runs it in some transaction), and its value.
    public static func value<T: Sendable>(election: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T),
                                          carriedBy carry: (LeaseRound) async throws -> Void) async throws -> T {
        let decided = Decided<T>()
        try await carry(LeaseRound(election: election) { state in
            let (writes, value) = try body(state)
            decided.value.withLock { $0 = value }
            return writes
        })
        guard let value = decided.value.withLock({ $0 }) else {
            throw CoordinationError.unavailable("the lease transaction of \(election) ended without deciding")
        }
        return value
    }

    private final class Decided<T: Sendable>: Sendable {
        let value = Mutex<T?>(nil)
    }
}

extension LeaseBackend {
    public func transaction(rounds: [LeaseRound]) async -> [Result<Void, any Error>] {
        var results: [Result<Void, any Error>] = []
        for round in rounds {
            do {
                try await transaction(election: round.election) { state in (try round.decide(state), ()) }
                results.append(.success(()))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }
}

/// The rows one lease transaction writes.
public struct LeaseWrites: Sendable, Hashable {
    /// The lease row's new content.
    public var lease: LeaseRow?
    /// A candidate row to insert or replace.
    public var candidate: CandidateRow?
    /// A candidate row to delete (`id`), only if `instance` wrote it: a withdrawing process never
    /// deletes the row of another one with its id.
    public var withdraw: Withdrawal?

    public struct Withdrawal: Sendable, Hashable {
        public var id: String
        public var instance: String
        public init(id: String, instance: String) { self.id = id; self.instance = instance }
    }

    public init(lease: LeaseRow? = nil, candidate: CandidateRow? = nil, withdraw: Withdrawal? = nil) {
        self.lease = lease
        self.candidate = candidate
        self.withdraw = withdraw
    }

    public static let none = LeaseWrites()
}

/// `ElectionAdministration` for any lease backend.
public struct LeaseAdministration: ElectionAdministration {
    let backend: any LeaseBackend
    let configuration: LeaseConfiguration

    public init(backend: any LeaseBackend, configuration: LeaseConfiguration) {
        self.backend = backend
        self.configuration = configuration
    }

    public func snapshot() async throws -> ElectionSnapshot {
        try await backend.prepare()
        return try await backend.transaction(election: configuration.name) { [configuration] state in
            (.none, LeaseRules.snapshot(state, configuration: configuration))
        }
    }

    public func setPreferred(_ id: String?) async throws {
        if let id { try Candidate.validate(id: id) }
        try await backend.prepare()
        try await backend.transaction(election: configuration.name) { [configuration] state in
            (LeaseWrites(lease: try LeaseRules.setPreferred(state, id, configuration: configuration)), ())
        }
    }

    public func switchover(to id: String) async throws {
        try Candidate.validate(id: id)
        try await backend.prepare()
        try await backend.transaction(election: configuration.name) { [configuration] state in
            (LeaseWrites(lease: try LeaseRules.setTarget(state, id, configuration: configuration)), ())
        }
    }

    public func close() async { await backend.close() }
}
