/// When a leader should hand over to the preferred master: once the preferred candidate has been
/// standing (up and healthy) without a break for the hold-down, in one run of it (a restart is a
/// break, though the dead run's record kept its id standing). A preferred node that flaps never
/// stays long enough to take over, and a leader never moves back and forth.
///
/// Sans-I/O: the leader calls `observe` with what it sees and the current moment.
public struct PreferredMasterPolicy: Sendable, Hashable {
    public var holdDown: Duration
    /// Since when the preferred candidate (of `watched`) has been seen standing without a break.
    private var availableSince: Moment?
    private var watched: String?
    private var watchedIncarnation: String?

    public init(holdDown: Duration) { self.holdDown = holdDown }

    /// Returns the candidate to hand over to, once it is time; nil otherwise.
    /// - Parameters:
    ///   - me: this leader's id.
    ///   - preferred: the preferred master from the store, if any.
    ///   - preferredStanding: whether that candidate is up, healthy and standing right now.
    ///   - incarnation: which run of it stands (`ElectionView.incarnations`), if known.
    public mutating func observe(now: Moment, me: String, preferred: String?, preferredStanding: Bool,
                                 incarnation: String? = nil) -> String? {
        guard let preferred, preferred != me, preferredStanding else {
            reset()
            return nil
        }
        if watched != preferred || watchedIncarnation != incarnation {
            watched = preferred
            watchedIncarnation = incarnation
            availableSince = now
        }
        let since = availableSince ?? now
        availableSince = since
        return now - since >= holdDown ? preferred : nil
    }

    /// Forgets what was seen (on losing leadership, or after handing over).
    public mutating func reset() {
        availableSince = nil
        watched = nil
        watchedIncarnation = nil
    }
}
