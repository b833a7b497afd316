import Coordination
import HawserCore
import HawserWire
import Synchronization

/// Who the replicas of one notary are, and which one this is. One member: a notary on its own
/// (the embedded log), which confirms what it applies at once.
public struct ReplicaMembership: Sendable, Equatable {
    public var me: String
    public var members: [String]

    public init(me: String, members: [String]) {
        self.me = me
        self.members = members
    }

    public static let alone = ReplicaMembership(me: "local", members: ["local"])
}

/// Why a replica is not ready to serve, as health and metrics report it.
public enum QuorumHealth: Sendable, Equatable {
    case ready
    case catchingUp
    /// The log broke under this replica, or a majority of the members disagree with its chain.
    case diverged(LogBreak?, [Disagreement])
    /// Another process runs with this replica's id.
    case impostor(ReplicaReport)
    /// Fewer than a majority of the members have been heard from lately and agree with this
    /// replica's chain (`live`): nothing more can be confirmed.
    case noQuorum(live: [String])
    /// The others' reports do not authenticate under this replica's notary key (`claimed`: the
    /// replica the last one named itself, unverified): it runs with another key.
    case foreignKey(claimed: String)
    /// A replica of this notary runs with another `log.members` list than this one's (`mine`):
    /// majorities of two lists need not overlap, so this one takes no requests.
    case otherMembers(ReplicaReport, mine: [String])

    /// The state's name in `GET /v1/replica`'s `status` and in the log.
    public var status: String {
        switch self {
        case .ready: "ready"
        case .catchingUp: "catching_up"
        case .diverged: "log_diverged"
        case .impostor: "duplicate_replica"
        case .foreignKey: "key_mismatch"
        case .otherMembers: "members_mismatch"
        case .noQuorum: "no_quorum"
        }
    }

    /// The error a request gets from a replica in this state, nil when it may proceed (a replica
    /// that is catching up or short of a quorum still takes requests: they may yet be answered).
    public var refusal: APIError? {
        switch self {
        case .ready, .catchingUp, .noQuorum: nil
        case .diverged(let broken, let disagreements):
            APIError(.logDiverged, "this replica stopped signing: "
                     + (broken.map(\.description) ?? "its chain differs from \(disagreements.map(\.peer).joined(separator: ", "))")
                     + "; send the request to another replica")
        case .impostor(let report):
            APIError(.logDiverged, "this replica stopped signing: another process runs as replica `\(report.replica)`; send the request to another replica")
        case .foreignKey(let claimed):
            APIError(.noQuorum, "the replicas' reports this replica hears (the last claiming to come from `\(claimed.prefix(64))`) do not "
                     + "authenticate under its notary key, and none does: it and they run with different keys (compare `hawser notary "
                     + "identity` on each); send the request to another replica")
        case .otherMembers(let report, let mine):
            APIError(.noQuorum, "replica `\(report.replica)` of this notary runs with the members [\(report.members.joined(separator: ", "))], "
                     + "this replica with [\(mine.joined(separator: ", "))]: majorities of two lists need not overlap, so no replica "
                     + "that hears another list takes requests until every replica runs with the same `log.members`; try again later")
        }
    }
}

/// The shell around `Confirmations`, shared by the replica (its progress), the gossip service
/// (the peers' reports) and the appender (who sequences). When the confirmed position advances it
/// releases the held answers (`AnswerGate`).
public final class Quorum: Sendable {
    private struct State {
        var confirmations: Confirmations?
        var caughtUp = false
        var broken: LogBreak?
        var reports: UInt64 = 0
    }
    public let membership: ReplicaMembership
    public let instance: UInt64
    private let state = Mutex(State())
    private let gate: AnswerGate
    private let metrics: NotaryMetrics
    private let liveness: Duration
    private let clock: @Sendable () -> Moment
    /// The newest report to publish (older unsent ones are superseded).
    let outbox: AsyncStream<ReplicaReport>
    private let post: AsyncStream<ReplicaReport>.Continuation
    /// The confirmed position, for those who wait on it.
    public let confirmedSignal = PositionSignal(0)
    /// The position this replica has applied.
    public let appliedSignal = PositionSignal(0)
    /// How many reports this replica has received from the others, authentic or not.
    public let reportsReceived = PositionSignal(0)

    public init(membership: ReplicaMembership, gate: AnswerGate, metrics: NotaryMetrics, liveness: Duration = .milliseconds(1_500),
                clock: @escaping @Sendable () -> Moment = Moment.now) {
        self.membership = membership
        self.gate = gate
        self.metrics = metrics
        self.liveness = liveness
        self.clock = clock
        instance = UInt64.random(in: 1...UInt64.max)
        (outbox, post) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    public var isAlone: Bool { membership.members.count == 1 }

    /// The replica starts from its store's head.
    func start(at head: ChainHead) {
        let confirmed = state.withLock { state -> UInt64 in
            state.confirmations = Confirmations(members: membership.members, me: membership.me, instance: instance,
                                                head: head, liveness: liveness)
            return state.confirmations!.confirmed
        }
        appliedSignal.advance(to: head.position)
        advance(to: confirmed)
        publish()
    }

    /// The replica committed `heads` (one per position it consumed, in order).
    func applied(_ heads: [ChainHead]) {
        let confirmed = state.withLock { state -> UInt64 in
            state.confirmations?.applied(heads, at: clock())
            return state.confirmations?.confirmed ?? 0
        }
        appliedSignal.advance(to: heads.last?.position ?? 0)
        advance(to: confirmed)
        publish()
    }

    /// A peer's authenticated report arrived.
    func received(_ report: ReplicaReport) {
        take { $0.received(report, at: $1) }
    }

    /// A report arrived that does not authenticate (`claimed`: the sender it names, unverified).
    func unauthentic(claimed: String) {
        metrics.unauthenticReports.increment()
        take { $0.unauthentic(claimed: claimed, at: $1) }
    }

    /// Gives the rule a report (`change`, at now), counts it, and publishes this replica's
    /// report if its status changed.
    private func take(_ change: (inout Confirmations, Moment) -> Void) {
        let now = clock()
        let (confirmed, statusChanged, count) = state.withLock { state -> (UInt64, Bool, UInt64) in
            let before = Self.status(state, now)
            if state.confirmations != nil { change(&state.confirmations!, now) }
            state.reports += 1
            return (state.confirmations?.confirmed ?? 0, Self.status(state, now) != before, state.reports)
        }
        advance(to: confirmed)
        if statusChanged { publish() }
        reportsReceived.advance(to: count)
    }

    /// Returns once `condition` holds, checking it after each report from the others (it waits
    /// for reports, not for time).
    public func waitUntil(_ condition: (Quorum) -> Bool) async throws {
        while true {
            let heard = reportsReceived.value
            if condition(self) { return }
            try await reportsReceived.wait(beyond: heard)
        }
    }

    func caughtUp() {
        state.withLock { $0.caughtUp = true }
        publish()
    }

    /// The last append the log refused (not one it failed to answer in time: a full disk, not
    /// servers without a majority), and until when it counts; cleared by the next append taken.
    private let appendRefusal = Mutex<(problem: String, until: ContinuousClock.Instant)?>(nil)

    /// The log refused an append: readiness says so for `window` (the appender's time-out), or
    /// until an append is taken. Past it the refusal is forgotten, so that a notary nobody sends
    /// requests to (as it said it was not ready) is tried again and can find the disk freed.
    func appendRefused(_ problem: String, for window: Duration) { appendRefusal.withLock { $0 = (problem, .now + window) } }
    func appendTaken() { appendRefusal.withLock { if $0 != nil { $0 = nil } } }

    /// Why the log refused the last append, while that counts (`appendRefused`).
    public var appendProblem: String? {
        appendRefusal.withLock { refusal in refusal.flatMap { ContinuousClock.now <= $0.until ? $0.problem : nil } }
    }

    /// `/health/ready`'s sentence for an `appendProblem`.
    public static func appendProblemMessage(_ problem: String) -> String {
        "the log refuses appends (requests time out meanwhile; the next one tries again): \(problem)"
    }

    /// The replica found the log broken: it applies nothing more (what it applied before the
    /// break is still signed once confirmed).
    func broke(_ evidence: LogBreak) {
        let first = state.withLock { state -> Bool in
            guard state.broken == nil else { return false }
            state.broken = evidence
            return true
        }
        if first { publish() }
    }

    /// Whether the replica found the log broken (`broke`).
    var isBroken: Bool { state.withLock { $0.broken != nil } }

    /// The evidence that the log, ending at `end`, lost entries that a majority of the replicas
    /// report having applied (`Confirmations.majorityReached`); nil if it holds that far.
    public func logLost(end: UInt64) -> LogBreak? {
        guard let reached = state.withLock({ $0.confirmations?.majorityReached }), end < reached.position else { return nil }
        return .truncated(end: end, reachedByMajority: reached)
    }

    /// The furthest position a majority of the replicas report having applied (0 if none).
    public var majorityReached: UInt64 { state.withLock { $0.confirmations?.majorityReached?.position ?? 0 } }

    /// This replica's head (genesis before it started).
    public var head: ChainHead { state.withLock { $0.confirmations?.head ?? .genesis } }

    /// Whether the replica has started: read its store's head (before, `head` is genesis).
    public var started: Bool { state.withLock { $0.confirmations != nil } }

    /// This replica's head at a recent `position`.
    public func head(at position: UInt64) -> ChainHead? { state.withLock { $0.confirmations?.head(at: position) } }

    public var confirmed: UInt64 { confirmedSignal.value }

    /// The member that should append now, nil when none can. A notary on its own appends also
    /// while it catches up (its appender waits for its replica anyway).
    public func sequencer() -> String? {
        let now = clock()
        return state.withLock { state in
            let status = Self.status(state, now)
            return state.confirmations?.sequencer(at: now, selfReady: isAlone ? status != .diverged : status == .ready)
        }
    }

    public var health: QuorumHealth {
        let now = clock()
        return state.withLock { state in
            state.confirmations?.health(broken: state.broken, caughtUp: state.caughtUp, at: now) ?? .catchingUp
        }
    }

    /// Peers that hold another chain than this replica (evidence, also when not outvoted).
    public var disagreements: [Disagreement] { state.withLock { $0.confirmations?.disagreements ?? [] } }

    /// The report this replica publishes now.
    var report: ReplicaReport? {
        let now = clock()
        return state.withLock { state in state.confirmations?.report(status: Self.status(state, now)) }
    }

    private static func status(_ state: State, _ now: Moment) -> ReplicaReport.Status {
        state.confirmations?.status(broken: state.broken != nil, caughtUp: state.caughtUp, at: now) ?? .catchingUp
    }

    private func publish() {
        guard let report else { return }
        metrics.logDiverged.record(report.status == .diverged ? 1 : 0)
        if !isAlone { post.yield(report) }
    }

    private func advance(to confirmed: UInt64) {
        guard confirmed > confirmedSignal.value else { return }
        confirmedSignal.advance(to: confirmed)
        metrics.confirmedPosition.record(Int64(confirmed))
        gate.release(through: confirmed)
    }
}
