/// The lease row as a database transaction sees it (locked for the rest of the transaction).
public struct LeaseRow: Sendable, Hashable {
    public var holder: String?
    public var epoch: Epoch
    /// Whether the lease is unexpired by the database's clock.
    public var live: Bool
    public var preferred: String?
    public var target: String?
    public init(holder: String?, epoch: Epoch, live: Bool, preferred: String? = nil, target: String? = nil) {
        self.holder = holder
        self.epoch = epoch
        self.live = live
        self.preferred = preferred
        self.target = target
    }
}

/// What one candidate's round does to the lease row: the rule every backend applies inside its
/// transaction, so PostgreSQL and SQLite behave the same.
public enum LeaseDecision: Sendable, Hashable {
    /// The candidate holds an unexpired lease: extend it, same epoch.
    case renew
    /// The lease is free or expired: take it with the next epoch (and clear a switchover aimed at us).
    case acquire(Epoch, clearTarget: Bool)
    /// Someone else holds it, or it is reserved for a switchover target, or we may not lead.
    case leave

    /// - Parameters:
    ///   - mayAcquire: false while unhealthy or standing aside.
    ///   - standing: ids of candidates standing now (healthy, seen within a lease by the database's clock).
    public static func decide(row: LeaseRow, me: String, mayAcquire: Bool, standing: Set<String>) -> LeaseDecision {
        if row.holder == me && row.live { return .renew }
        if row.live && row.holder != nil { return .leave }
        guard mayAcquire else { return .leave }
        if let target = row.target, target != me, standing.contains(target) { return .leave }
        return .acquire(row.epoch.next, clearTarget: row.target != nil)
    }
}

/// What a candidate learns from one round.
public struct LeaseObservation: Sendable, Hashable {
    /// The holder of an unexpired lease after the round, if any.
    public var holder: String?
    public var epoch: Epoch
    public var preferred: String?
    public var target: String?
    /// Candidates standing now (healthy, seen within a lease), this one included if it is.
    public var standing: Set<String>
    public init(holder: String?, epoch: Epoch, preferred: String?, target: String?, standing: Set<String>) {
        self.holder = holder
        self.epoch = epoch
        self.preferred = preferred
        self.target = target
        self.standing = standing
    }
}
