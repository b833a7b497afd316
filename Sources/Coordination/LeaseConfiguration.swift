/// Timing of a lease election (PostgreSQL or SQLite). Validated by `validate()` at start-up.
public struct LeaseConfiguration: Sendable, Hashable {
    /// The election's name: several elections can share one database.
    public var name: String = "default"
    /// How long a granted or renewed lease lasts, judged by the database's clock. A dead leader is
    /// replaced after at most this plus one renew interval.
    public var leaseDuration: Duration = .seconds(2)
    /// How often every candidate talks to the database: the leader renews, the others try to
    /// acquire and report that they stand.
    public var renewInterval: Duration = .milliseconds(500)
    /// How long the preferred master must be standing before leadership moves to it.
    public var holdDown: Duration = .seconds(10)
    /// After resigning, how long a candidate does not try to lead (so another one does).
    public var standAside: Duration = .seconds(4)
    /// How long one database round may take before it counts as failed.
    public var requestTimeout: Duration = .seconds(1)

    public init() {}

    /// A leader stops acting this long before its lease could expire by the database's clock:
    /// a tenth of the lease covers clock-rate differences between this machine and the database.
    public var safetyMargin: Duration { leaseDuration / 10 }

    /// A switchover target must have been seen this recently, and a released lease stays reserved
    /// for it as long as it was: a live candidate starts a round at least once per renew interval
    /// plus the longest a round may take.
    public var handOverWindow: Duration { renewInterval + requestTimeout }

    /// The core's timing. A duplicate's predecessor (a crashed process with the same id) stops
    /// being seen one lease after its last round.
    public var timing: ElectionTiming {
        ElectionTiming(validity: leaseDuration - safetyMargin, holdDown: holdDown, standAside: standAside,
                       duplicateGrace: leaseDuration + renewInterval * 2)
    }

    /// Every problem at once; empty when valid.
    public func problems() -> [String] {
        var problems: [String] = []
        if (try? Candidate.validate(id: name)) == nil { problems.append("election name \"\(name)\" must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'") }
        if leaseDuration < .milliseconds(200) { problems.append("leaseDuration must be at least 200 ms") }
        if renewInterval < .milliseconds(10) { problems.append("renewInterval must be at least 10 ms") }
        if renewInterval * 3 > leaseDuration { problems.append("renewInterval must be at most a third of leaseDuration, so a leader renews at least twice before its lease could lapse") }
        if requestTimeout <= .zero || requestTimeout > leaseDuration - safetyMargin - renewInterval {
            problems.append("requestTimeout must be positive and at most leaseDuration - leaseDuration/10 - renewInterval")
        }
        if holdDown < .zero { problems.append("holdDown must not be negative") }
        if standAside < .zero { problems.append("standAside must not be negative") }
        return problems
    }

    public func validate() throws(CoordinationError) {
        let problems = problems()
        if !problems.isEmpty { throw .invalidConfiguration(problems.joined(separator: "; ")) }
    }
}
