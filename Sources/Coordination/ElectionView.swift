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
    /// Another live process stands with this candidate's id: this one must not lead.
    public var duplicate: Bool

    public init(holder: String?, epoch: Epoch, preferred: String? = nil, target: String? = nil,
                standing: Set<String> = [], duplicate: Bool = false) {
        self.holder = holder
        self.epoch = epoch
        self.preferred = preferred
        self.target = target
        self.standing = standing
        self.duplicate = duplicate
    }
}

/// The timing `ElectionCore` needs, derived from a backend's configuration.
public struct ElectionTiming: Sendable, Hashable {
    /// How long after a round was *sent* the leadership it confirmed may be acted on (lease: the
    /// lease less a tenth; ZooKeeper: two thirds of the session timeout, when a silent connection
    /// is given up).
    public var validity: Duration
    /// How long the preferred master must stand before leadership moves to it.
    public var holdDown: Duration
    /// After resigning without a target (or while unhealthy), how long a candidate does not take
    /// free leadership, so another one does.
    public var standAside: Duration
    /// After handing over to a target, how long the resigned leader does not take leadership back
    /// (the store reserves it for the target as long).
    public var handOverWindow: Duration
    /// How long another process with this candidate's id may be seen standing before this one
    /// gives up with `duplicate_candidate` (a crashed predecessor's traces vanish sooner).
    public var duplicateGrace: Duration

    public init(validity: Duration, holdDown: Duration, standAside: Duration, handOverWindow: Duration, duplicateGrace: Duration) {
        self.validity = validity
        self.holdDown = holdDown
        self.standAside = standAside
        self.handOverWindow = handOverWindow
        self.duplicateGrace = duplicateGrace
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

    public init(healthy: Bool, mayAcquire: Bool, standingAside: Bool, highestSeen: Epoch) {
        self.healthy = healthy
        self.mayAcquire = mayAcquire
        self.standingAside = standingAside
        self.highestSeen = highestSeen
    }
}

/// The switchover rule shared by every backend: free leadership goes to the switchover target
/// while it stands; another candidate takes it only if there is none.
public enum TakeoverRule {
    /// Whether `me` may take leadership that is free now.
    /// - Parameter targetReserved: whether the store still holds leadership for the target
    ///   (it stands and its reservation has not lapsed).
    public static func mayTake(me: String, request: RoundRequest, target: String?, targetReserved: Bool) -> Bool {
        guard request.mayAcquire else { return false }
        if target == me { return true }  // a target takes over even while standing aside
        if request.standingAside { return false }
        if target != nil, targetReserved { return false }
        return true
    }
}
