/// When an end of the stream before a position this process has seen (`floor`: read, or had
/// acknowledged) is believed: the stream did lose entries, or was made anew. Until then the end is
/// most likely a member's that has not caught up, in an answer that looks like the leader's (a
/// leader just elected that has not applied everything yet, a restarted server), and it is asked
/// again. Believed once such answers have come for `bound` of time this process observed: a gap
/// between two answers longer than `maxGap` (the process was paused, SIGSTOP or a starved machine,
/// or the stream had no leader) starts the bound again, since a replica that believed a stale end
/// stops with `log_diverged` (`truncated`). Waiting is safe: an append made on a stale end is
/// refused by the stream (it is conditional on the end), so only a stop decided too soon costs.
/// Sans I/O.
struct StaleEndWatch {
    let floor: UInt64
    let bound: Duration
    let maxGap: Duration
    private var since: ContinuousClock.Instant?
    private var last: ContinuousClock.Instant?

    init(floor: UInt64, bound: Duration, maxGap: Duration) {
        self.floor = floor
        self.bound = bound
        self.maxGap = maxGap
    }

    /// Whether the answer `end`, heard at `now`, is believed (false: ask again).
    mutating func believes(end: UInt64, at now: ContinuousClock.Instant) -> Bool {
        if end >= floor { return true }
        if let last, now - last > maxGap { since = nil }
        last = now
        let first = since ?? now
        since = first
        return now - first >= bound
    }
}

extension StaleEndWatch {
    /// Whether `end`, heard at `now` by a caller whose floor is `floor`, is believed, with the one
    /// watch all callers share (`stored`). A caller whose floor the end reaches believes it and
    /// leaves the watch alone; one that doubts it keeps the watch of a floor at or below its own
    /// that the end is still below (that watch's belief is evidence for it too), else starts its
    /// own. Before, every caller with another floor started the watch again: a replica's check of
    /// a majority's position against the end never reached the bound while requests came.
    static func shared(_ stored: inout StaleEndWatch?, floor: UInt64, end: UInt64, at now: ContinuousClock.Instant,
                       bound: Duration, maxGap: Duration) -> Bool {
        guard end < floor else { return true }
        var watch = stored.flatMap { end < $0.floor && $0.floor <= floor ? $0 : nil }
            ?? StaleEndWatch(floor: floor, bound: bound, maxGap: maxGap)
        let believed = watch.believes(end: end, at: now)
        stored = believed ? nil : watch
        return believed
    }
}
