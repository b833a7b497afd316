/// Stop, then release: the rule by which a leader that gives leadership up of its own accord
/// (resigning, unhealthy, a switchover, the preferred master) keeps it in the store until the work
/// it did as leader has stopped (sans-I/O, a part of `ElectionCore`).
///
/// The work's last write (a node's engine clearing its flows' replay markers) is fenced at the
/// ending term's epoch: once a successor has claimed, the database refuses it, and the successor
/// finds what that write should have removed (a node parks the flows as if they had crashed it).
/// So the store work that lets a successor lead (`release`, `withdraw`) waits for `workStopped`,
/// but never longer than `bound`, so that a stop that hangs cannot keep leadership: a hand-over
/// then waits no longer than a take-over after a crash would. While it waits no round is sent, so
/// leadership is neither renewed nor taken back. A leader that loses leadership without choosing
/// to (lapsed, session lost) has nothing to hold: a successor may own the shard already.
struct ReleaseHold: Sendable {
    /// Work started under a leadership runs still, until `workStopped` (reported by its owner,
    /// e.g. `ShardService`).
    private(set) var isWorking = false
    private var held: (until: Moment, actions: [ElectionCore.Action])?

    /// Whether giving up is being held back now.
    var isHolding: Bool { held != nil }

    mutating func workStarted() { isWorking = true }

    /// `actions` give up a leadership held until now: done now when no work runs, else held until
    /// the work stopped or `now + bound`.
    mutating func giveUp(_ actions: [ElectionCore.Action], now: Moment, bound: Duration) -> [ElectionCore.Action] {
        guard !isHolding else { return alongside(actions) }
        guard isWorking, !actions.isEmpty else { return actions }
        held = (now + bound, actions)
        return []
    }

    /// `actions` would also let a successor lead (withdrawing; releasing what a round sent before
    /// a resignation took): held with what is held already, else done now.
    mutating func alongside(_ actions: [ElectionCore.Action]) -> [ElectionCore.Action] {
        guard var hold = held else { return actions }
        hold.actions += actions.filter { !hold.actions.contains($0) }
        held = hold
        return []
    }

    /// The work stopped: what was held is done now.
    mutating func workStopped() -> [ElectionCore.Action] {
        isWorking = false
        return letGo()
    }

    /// Past the bound: what was held is done now, the work stopped or not.
    mutating func expire(now: Moment) -> [ElectionCore.Action] {
        guard let held, now >= held.until else { return [] }
        return [.report(.workStopOverdue)] + letGo()
    }

    /// What is held, at once (the candidate stops standing).
    mutating func letGo() -> [ElectionCore.Action] {
        defer { held = nil }
        return held?.actions ?? []
    }
}
