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
    /// The statuses from now on, starting with the current one.
    func statuses() -> AsyncStream<ElectionStatus>
    /// Stands for election until cancelled; on cancellation it steps down and withdraws.
    func run() async throws
    /// Gives up leadership now (if held) and stands aside for a while, so another candidate leads.
    func resign() async
    /// Moves leadership to the named candidate: it must be standing. Returns once asked; the move
    /// itself happens as soon as the current leader sees it (at once if this candidate leads).
    func handOver(to id: String) async throws
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
    public var preferred: String?
    public var switchoverTarget: String?

    public init(leader: String?, epoch: Epoch, candidates: [Candidate], preferred: String?, switchoverTarget: String?) {
        self.leader = leader
        self.epoch = epoch
        self.candidates = candidates
        self.preferred = preferred
        self.switchoverTarget = switchoverTarget
    }
}
