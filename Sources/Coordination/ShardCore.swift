/// The decisions of one process about one shard it stands for (sans-I/O): when to hold and
/// release the write fence, when to make the claiming write, when to start and stop the work the
/// shard owns (a node's flow engine), and when to step down. Events in (the election's status,
/// the outcome of each action), actions out; the shell does the I/O and reports back. It needs no
/// clock: every timing rule (lease validity, health, hold-down) is the election's, and this core
/// follows the status the election publishes.
///
/// One core per shard: a node that owns several shards (hot-hot) runs one per shard, each with its
/// own election and fence, so "more shards over more processes" adds no mechanism.
///
/// The order it guarantees, which the shell must keep by performing actions in the order given:
/// - on winning epoch E: `hold(E)`, then `claim(E)` (one fenced write, so the database knows E
///   and refuses the former owner from then on; repeated until it commits or is refused), then
///   `startWork(E)` only after `claimed(E)`;
///   the shard serves (`isServing`) only after `workStarted(E)`;
/// - on losing, resigning or a refused write: `release` *before* `stopWork`, so not one write
///   of the stopping work can commit; a new term begins only after `workStopped`;
/// - on `shutdown`: as on resigning (`stepDown`, so that the election releases the shard only once
///   the work has stopped), then `finish` once no work runs; no new term begins.
public struct ShardCore: Sendable {
    public enum Action: Sendable, Hashable {
        /// Hold the write fence at this epoch.
        case hold(Epoch)
        /// Make one fenced write at this epoch (`retry`: again, after a pause); report `claimed`
        /// or `claimFailed`.
        case claim(Epoch, retry: Bool)
        /// Start the shard's work for this term; report `workStarted` or `workFailed`.
        case startWork(Epoch)
        /// Release the write fence: every later write is refused before it reaches the database.
        case release
        /// Stop the shard's work at once; report `workStopped`.
        case stopWork
        /// Give leadership up in the election (resign), for this reason.
        case stepDown(String)
        /// Shut down: no work runs and none will; stop standing in the election.
        case finish
    }

    /// Where the shard's term stands.
    public enum Phase: Sendable, Hashable {
        /// Not owning the shard: no fence, no work.
        case standby
        /// Won `epoch`; the fence holds it and the claiming write is under way.
        case claiming(Epoch)
        /// Claimed `epoch`; the work is starting (a node resumes its unfinished flows).
        case starting(Epoch)
        /// Owning and serving under `epoch`.
        case active(Epoch)
        /// The fence is released and the work is stopping; nothing else happens until it stopped.
        case stopping
    }

    public private(set) var phase = Phase.standby
    /// The latest status the election published.
    public private(set) var election = ElectionStatus.initial
    /// The epoch this process gave up of its own accord (a failed claim, a refused write): not
    /// taken up again even while the election still says it leads with it.
    private var abandoned: Epoch?
    private var shuttingDown = false

    public init() {}

    /// Whether the shard serves now: it owns the shard and its work has started.
    public var isServing: Bool {
        if case .active = phase { return true }
        return false
    }

    /// The leader as last seen, when it is another process.
    public var otherLeader: String? {
        election.role.epoch == nil ? election.leader : nil
    }

    /// The election published a new status.
    public mutating func status(_ status: ElectionStatus) -> [Action] {
        election = status
        if abandoned != nil, abandoned != status.role.epoch { abandoned = nil }
        return reconcile()
    }

    /// The claiming write at `epoch` committed.
    public mutating func claimed(_ epoch: Epoch) -> [Action] {
        guard phase == .claiming(epoch) else { return [] }
        phase = .starting(epoch)
        return [.startWork(epoch)] + reconcile()
    }

    /// The claiming write failed. `refused`: the fencing check refused it (a newer owner exists):
    /// step down. Otherwise (the database busy or unreachable) claim again while the election
    /// says this process leads: a SQLite database stays locked while a paused former owner holds
    /// its write lock, and an unreachable one makes the health check resign for us.
    public mutating func claimFailed(_ epoch: Epoch, problem: String, refused: Bool) -> [Action] {
        guard phase == .claiming(epoch) else { return [] }
        guard refused else { return [.claim(epoch, retry: true)] }
        return abandon(epoch, reason: "the claiming write at epoch \(epoch) was refused: \(problem)")
    }

    /// The work of `epoch`'s term started and serves.
    public mutating func workStarted(_ epoch: Epoch) -> [Action] {
        guard phase == .starting(epoch) else { return [] }
        phase = .active(epoch)
        return reconcile()
    }

    /// The work of `epoch`'s term could not start.
    public mutating func workFailed(_ epoch: Epoch, problem: String) -> [Action] {
        guard phase == .starting(epoch) else { return [] }
        return abandon(epoch, reason: "the work could not start at epoch \(epoch): \(problem)")
    }

    /// The database refused a write of this process (`stale_epoch`: a newer owner exists;
    /// `not_owner`): stop at once and step down.
    public mutating func writeRefused(problem: String) -> [Action] {
        switch phase {
        case .claiming(let epoch), .starting(let epoch), .active(let epoch):
            return abandon(epoch, reason: "a write was refused: \(problem)")
        case .standby, .stopping:
            return []  // refusals of work already being stopped
        }
    }

    /// The work stopped: the next term may begin.
    public mutating func workStopped() -> [Action] {
        guard phase == .stopping else { return [] }
        phase = .standby
        return shuttingDown ? [.finish] : reconcile()
    }

    /// The process shuts down (gracefully): it gives the shard up as a resignation does, so that a
    /// successor claims only once the work has stopped, and finishes then.
    public mutating func shutdown() -> [Action] {
        guard !shuttingDown else { return [] }
        shuttingDown = true
        switch phase {
        case .standby:
            return [.finish]
        case .claiming(let epoch):
            return abandon(epoch, reason: "shutting down") + [.finish]
        case .starting(let epoch), .active(let epoch):
            return abandon(epoch, reason: "shutting down")
        case .stopping:
            return []
        }
    }

    /// The epoch this process should own now, if any.
    private var wanted: Epoch? {
        guard !shuttingDown, let epoch = election.role.epoch, epoch != abandoned else { return nil }
        return epoch
    }

    /// Moves the phase towards what the election says, one step at a time.
    private mutating func reconcile() -> [Action] {
        switch phase {
        case .standby:
            guard let epoch = wanted else { return [] }
            phase = .claiming(epoch)
            return [.hold(epoch), .claim(epoch, retry: false)]
        case .claiming(let epoch):
            guard wanted != epoch else { return [] }
            // Nothing started yet: the claim's answer, when it comes, is ignored.
            phase = .standby
            return [.release] + reconcile()
        case .starting(let epoch), .active(let epoch):
            guard wanted != epoch else { return [] }
            phase = .stopping
            return [.release, .stopWork]
        case .stopping:
            return []
        }
    }

    private mutating func abandon(_ epoch: Epoch, reason: String) -> [Action] {
        abandoned = epoch
        let stop: [Action]
        switch phase {
        case .claiming:
            phase = .standby
            stop = [.release]
        case .starting, .active:
            phase = .stopping
            stop = [.release, .stopWork]
        case .standby, .stopping:
            stop = []
        }
        return stop + [.stepDown(reason)]
    }
}
