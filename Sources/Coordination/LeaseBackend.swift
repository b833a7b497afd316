/// A database that holds lease elections (PostgreSQL, SQLite). Each call is one transaction; the
/// expiry of leases and candidates is judged by the database's clock, never the caller's.
public protocol LeaseBackend: Sendable {
    /// Creates the tables if they are missing.
    func prepare() async throws
    /// One round: record that `candidate` stands (with its health), then apply
    /// `LeaseDecision.decide` to the locked lease row, and report what the row says afterwards.
    func round(election: String, candidate: Candidate, healthy: Bool, mayAcquire: Bool,
               leaseDuration: Duration) async throws -> LeaseObservation
    /// Gives the lease up if `holder` still holds it with `epoch`: it expires now. With `handOverTo`,
    /// the lease is reserved for that candidate while it stands.
    func release(election: String, holder: String, epoch: Epoch, handOverTo: String?) async throws
    /// Removes the candidate from the standing list (on shutdown).
    func withdraw(election: String, candidate: String) async throws
    /// The operator's view and commands.
    func snapshot(election: String, leaseDuration: Duration) async throws -> ElectionSnapshot
    func setPreferred(election: String, _ id: String?) async throws
    /// Reserves the lease for `id` (standing within `leaseDuration`), or throws `unknownCandidate`.
    func setTarget(election: String, _ id: String, leaseDuration: Duration) async throws
    /// Closes connections; the backend may not be used afterwards.
    func close() async
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
        return try await backend.snapshot(election: configuration.name, leaseDuration: configuration.leaseDuration)
    }

    public func setPreferred(_ id: String?) async throws {
        if let id { try Candidate.validate(id: id) }
        try await backend.prepare()
        try await backend.setPreferred(election: configuration.name, id)
    }

    public func switchover(to id: String) async throws {
        try Candidate.validate(id: id)
        try await backend.prepare()
        try await backend.setTarget(election: configuration.name, id, leaseDuration: configuration.leaseDuration)
    }

    public func close() async { await backend.close() }
}
