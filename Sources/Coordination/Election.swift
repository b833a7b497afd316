/// The election port: one candidate taking part in electing a single leader.
///
/// `run()` stands for election until its task is cancelled (a service-lifecycle service can simply
/// call it). While leading, the candidate holds an `Epoch` to put on every write to shared state;
/// it must stop writing as soon as `status.role` is no longer `.leader` with that epoch.
public protocol Election: Sendable {
    /// Who this candidate is.
    var candidate: Candidate { get }
    /// The latest status.
    var status: ElectionStatus { get }
    /// Whether this candidate leads at this moment by the clock: false once its last confirmation
    /// is no longer valid, even before the step-down that follows is made (a process paused past
    /// its lease runs its requests before the timer that steps it down).
    func leadsNow() -> Bool
    /// The statuses from now on, starting with the current one.
    func statuses() -> AsyncStream<ElectionStatus>
    /// Stands for election until cancelled; on cancellation it steps down and withdraws.
    func run() async throws
    /// Gives up leadership now (if held) and stands aside for a while, so another candidate leads.
    func resign() async
    /// Moves leadership to the named candidate: it must be standing. Returns once asked; the move
    /// itself happens as soon as the current leader sees it (at once if this candidate leads).
    func handOver(to id: String) async throws
    /// The work done under this candidate's leadership with `epoch` starts (a node's flow engine).
    /// From now on, leadership given up of its own accord (`resign`, `handOver`, unhealthy, a
    /// switchover, the preferred master) stays held in the store until `workStopped`, a bounded
    /// while at most, so that no successor claims before that work's last write. Returns false if
    /// this candidate no longer leads with `epoch` (given up in the meantime): do not start then.
    func workStarted(epoch: Epoch) -> Bool
    /// The work reported by `workStarted` has stopped, its last write made.
    func workStopped()
}

/// Operator commands on an election, talking to the coordination store directly.
public protocol ElectionAdministration: Sendable {
    /// Who leads, with which epoch, who stands, and the preferred and switchover settings.
    func snapshot() async throws -> ElectionSnapshot
    /// Sets (or clears, with nil) the preferred master. Takes effect without any restart.
    func setPreferred(_ id: String?) async throws
    /// Asks the leader to hand over to `id`, which must be standing.
    func switchover(to id: String) async throws
    /// Closes the connection to the store.
    func close() async
}

/// The state of an election as an operator sees it.
public struct ElectionSnapshot: Sendable, Hashable, Codable {
    public var leader: String?
    public var epoch: Epoch
    /// Candidates currently standing, in the order they would take over (ZooKeeper) or by id (lease).
    public var candidates: [Candidate]
    /// Candidates seen lately that report themselves unhealthy and so do not stand (lease backends;
    /// an unhealthy ZooKeeper candidate withdraws its node, and is not seen at all).
    public var unhealthy: [Candidate]
    public var preferred: String?
    public var switchoverTarget: String?

    public init(leader: String?, epoch: Epoch, candidates: [Candidate], unhealthy: [Candidate] = [], preferred: String?,
                switchoverTarget: String?) {
        self.leader = leader
        self.epoch = epoch
        self.candidates = candidates
        self.unhealthy = unhealthy
        self.preferred = preferred
        self.switchoverTarget = switchoverTarget
    }

    /// Every member the store knows of, with its role: the leader `active` (with the epoch it
    /// leads under), the other standing candidates `standby`, then the `unhealthy` ones.
    public var members: [ElectionMember] {
        candidates.map { candidate in
            let leads = candidate.id == leader
            return ElectionMember(id: candidate.id, role: leads ? .active : .standby, epoch: leads ? epoch : nil, healthy: true,
                                  addresses: candidate.addresses)
        } + unhealthy.map { ElectionMember(id: $0.id, role: .unhealthy, epoch: nil, healthy: false, addresses: $0.addresses) }
    }

    enum CodingKeys: String, CodingKey { case leader, epoch, candidates, unhealthy, preferred, switchoverTarget, members }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        leader = try c.decodeIfPresent(String.self, forKey: .leader)
        epoch = try c.decode(Epoch.self, forKey: .epoch)
        candidates = try c.decode([Candidate].self, forKey: .candidates)
        unhealthy = try c.decodeIfPresent([Candidate].self, forKey: .unhealthy) ?? []
        preferred = try c.decodeIfPresent(String.self, forKey: .preferred)
        switchoverTarget = try c.decodeIfPresent(String.self, forKey: .switchoverTarget)
    }

    /// Also writes `members`, for `hawser admin status`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(leader, forKey: .leader)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(candidates, forKey: .candidates)
        try c.encode(unhealthy, forKey: .unhealthy)
        try c.encodeIfPresent(preferred, forKey: .preferred)
        try c.encodeIfPresent(switchoverTarget, forKey: .switchoverTarget)
        try c.encode(members, forKey: .members)
    }
}

/// One member of an election as `hawser admin status` shows it.
public struct ElectionMember: Sendable, Hashable, Codable {
    public enum Role: String, Sendable, Hashable, Codable { case active, standby, unhealthy }
    public var id: String
    public var role: Role
    /// The epoch it leads under (the active member only).
    public var epoch: Epoch?
    public var healthy: Bool
    public var addresses: [String]

    public init(id: String, role: Role, epoch: Epoch?, healthy: Bool, addresses: [String]) {
        self.id = id
        self.role = role
        self.epoch = epoch
        self.healthy = healthy
        self.addresses = addresses
    }
}
