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
    /// How long another process with this candidate's id may be seen standing before this one
    /// gives up with `duplicate_candidate` (a crashed predecessor's traces vanish sooner).
    public var duplicateGrace: Duration

    public init(validity: Duration, holdDown: Duration, standAside: Duration, duplicateGrace: Duration) {
        self.validity = validity
        self.holdDown = holdDown
        self.standAside = standAside
        self.duplicateGrace = duplicateGrace
    }
}
