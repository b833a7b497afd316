/// What one round on the coordination store showed a candidate: the input every backend feeds
/// to `ElectionCore`. The lease backends build it from the lease row after applying
/// `LeaseRules.round`; the ZooKeeper backend from the candidate queue and the epoch node after
/// its claim (if it made one).
public struct ElectionView: Sendable, Hashable {
    /// Who holds leadership now by the store. It is this candidate's own id only when the store
    /// confirmed, in this round, that this candidate holds it with `epoch`.
    public var holder: String?
    /// The epoch of `holder`'s leadership (the last one handed out when nobody holds it).
    public var epoch: Epoch
    public var preferred: String?
    /// A pending switchover's target.
    public var target: String?
    /// Candidates standing now (up and healthy), this one included if it is.
    public var standing: Set<String>
    /// What tells one run of a standing candidate from the next (a lease row's instance, its
    /// ZooKeeper nodes): a candidate that restarted has stood only since, though its id stood
    /// throughout (a dead run's row or node outlives it for a lease or a session).
    public var incarnations: [String: String]
    /// Another live process stands with this candidate's id: this one must not lead.
    public var duplicate: Bool

    public init(holder: String?, epoch: Epoch, preferred: String? = nil, target: String? = nil,
                standing: Set<String> = [], incarnations: [String: String] = [:], duplicate: Bool = false) {
        self.holder = holder
        self.epoch = epoch
        self.preferred = preferred
        self.target = target
        self.standing = standing
        self.incarnations = incarnations
        self.duplicate = duplicate
    }
}

/// What a round asks of the store.
public struct RoundRequest: Sendable, Hashable {
    /// Whether this candidate stands healthy (an unhealthy one is recorded so, or withdraws).
    public var healthy: Bool
    /// Whether it may take leadership that is free (false while unhealthy or a duplicate).
    public var mayAcquire: Bool
    /// Standing aside after a resignation: take free leadership only if it is the switchover target.
    public var standingAside: Bool
    /// Never take an epoch at or below this one (the highest this candidate has seen).
    public var highestSeen: Epoch
    /// The epoch this candidate leads with now (nil: it does not lead). The store renews only
    /// that epoch: a candidate that holds leadership by the store but stepped down meanwhile (its
    /// confirmation came too late) takes it again under a new epoch, so that two of its terms
    /// never share one and fencing can refuse a late write of the earlier.
    public var leadingWith: Epoch?

    public init(healthy: Bool, mayAcquire: Bool, standingAside: Bool, highestSeen: Epoch, leadingWith: Epoch? = nil) {
        self.healthy = healthy
        self.mayAcquire = mayAcquire
        self.standingAside = standingAside
        self.highestSeen = highestSeen
        self.leadingWith = leadingWith
    }
}
