import Coordination
import HawserCore

/// What one replica tells the others of itself: its chain head and whether it is ready.
public struct ReplicaReport: Sendable, Hashable {
    public enum Status: Sendable, Hashable { case catchingUp, ready, diverged }
    public var replica: String
    /// Random per process start: a restart brings a new one; two alternating mean two processes
    /// run with one replica id.
    public var instance: UInt64
    public var head: ChainHead
    public var status: Status
    /// The sender's member list, in order; empty from a version that did not send it.
    public var members: [String]

    public init(replica: String, instance: UInt64, head: ChainHead, status: Status, members: [String] = []) {
        self.replica = replica
        self.instance = instance
        self.head = head
        self.status = status
        self.members = members
    }
}

/// At `mine.position`, this replica and `peer` hold different chains.
public struct Disagreement: Sendable, Hashable {
    public var peer: String
    public var mine: ChainHead
    public var theirs: ChainHead
}

/// The quorum rule of a notary's replicas, without I/O: an outcome may be signed only once a
/// majority of the members have applied the same chain (`ChainHead`, equal in both hashes)
/// through the entry that decided it. Two majorities share a member, and a member applies one
/// entry per position and never goes back, so no two replicas can ever sign contradicting
/// outcomes, whatever the bus hands out (docs/cluster.md, "The verified log").
///
/// The shell feeds it the replica's own progress (`applied`) and the peers' reports
/// (`received`, already authenticated) and publishes `report(status:)`; `confirmed` is the
/// highest position the rule allows signing. Time is an input (`Moment`).
public struct Confirmations: Sendable, CustomStringConvertible {
    public let members: [String]
    public let me: String
    public let instance: UInt64
    /// A peer not heard from for this long is taken as down (when choosing the sequencer); a
    /// second process seen with one replica id is distrusted for ten times as long.
    public let liveness: Duration

    public private(set) var head: ChainHead
    /// The highest position a majority has applied alike; never decreases.
    public private(set) var confirmed: UInt64 = 0

    private struct Peer {
        var instance: UInt64
        /// The instance before the current one; a report from it again means two processes.
        var previousInstance: UInt64?
        var duplicateSeen: Moment?
        /// Reports not yet compared (ahead of this replica's head), oldest first.
        var pending: [ReplicaReport] = []
        var agreed: UInt64 = 0
        var disagreement: Disagreement?
        var lastHeard: Moment
        var status: ReplicaReport.Status
        /// The head of the peer's latest report, compared with this replica's chain or not.
        var latest: ChainHead?
    }
    private var peers: [String: Peer] = [:]
    /// The last report with this replica's id from another process, and when it came.
    private var impostorSeen: (report: ReplicaReport, at: Moment)?
    /// The last report on the bus that did not authenticate under this replica's key, and the
    /// replica it claimed to come from ("" when it named none).
    private var unauthenticSeen: (claimed: String, at: Moment)?
    /// The last authentic report that named another member list than this replica's, and when.
    private var otherMembersSeen: (report: ReplicaReport, at: Moment)?
    /// This replica's recent heads by position (slot `position % count`), to compare with peers'
    /// reports for positions it has already passed; nil where none is yet (a made-up head there
    /// once answered for position 2^64 - 1).
    private var recent: [ChainHead?]
    private static let pendingLimit = 64

    public var majority: Int { members.count / 2 + 1 }

    /// `head`: where this replica starts (its store's head). `members` includes `me`.
    public init(members: [String], me: String, instance: UInt64, head: ChainHead, liveness: Duration = .milliseconds(1_500),
                memory: Int = 65_536) {
        precondition(members.contains(me) && Set(members).count == members.count, "members are unique and include me")
        precondition(memory > 0)
        self.members = members
        self.me = me
        self.instance = instance
        self.liveness = liveness
        self.head = head
        recent = Array(repeating: nil, count: memory)
        record(head)
        if members.count == 1 { confirmed = head.position }
    }

    /// This replica's head at `position`, if it is recent enough to be remembered.
    public func head(at position: UInt64) -> ChainHead? {
        guard let slot = recent[Int(position % UInt64(recent.count))], slot.position == position else { return nil }
        return slot
    }

    /// The furthest head that a majority of the members report having applied (this replica's
    /// own head counts as its report), whether or not this replica has compared it with its own
    /// chain; nil at the start of the log. An entry a majority applied may have been confirmed and
    /// signed, so the log holds at least this far: one that ends before it lost entries, even if
    /// this replica applied none of them (it was down, or behind, when the others did).
    public var majorityReached: ChainHead? {
        var heads = [head]
        for id in members where id != me {
            guard let peer = peers[id], let latest = peer.latest else { continue }
            // Not while two processes share a replica id (as `recount`): either may be anything.
            if peer.duplicateSeen != nil { continue }
            heads.append(latest)
        }
        guard heads.count >= majority else { return nil }
        heads.sort { $0.position > $1.position }
        let reached = heads[majority - 1]
        return reached.position > 0 ? reached : nil
    }

    /// The peers that hold a different chain than this replica.
    public var disagreements: [Disagreement] { members.compactMap { peers[$0]?.disagreement } }

    /// True when too many members disagree with this replica for any majority to include it.
    public var isOutvoted: Bool { disagreements.count > members.count - majority }

    /// A report with this replica's id from another process, heard lately: two processes run as
    /// one replica, so this one stops confirming until it has not been heard for a while.
    public func impostor(at now: Moment) -> ReplicaReport? {
        impostorSeen.flatMap { now - $0.at <= liveness * 10 ? $0.report : nil }
    }

    /// Reports arrive that do not authenticate and no peer's report does: this replica runs with
    /// another notary key than the others (or is cut off from them while something else writes
    /// on their subject). Its entries would stop the others, their requests fail its signature
    /// checks: it takes no requests and does not sequence. Returns the claimed sender.
    public func foreignKey(at now: Moment) -> String? {
        guard let seen = unauthenticSeen, now - seen.at <= liveness, live(at: now) == [me] else { return nil }
        return seen.claimed
    }

    /// A replica of this notary (same key) runs with another member list, heard lately. Two lists
    /// have majorities that need not share a replica, and the proof that no two replicas sign
    /// contradicting outcomes rests on that: no replica that hears it takes requests, so a
    /// misconfigured one cannot quietly sign on a majority of its own. It ends `liveness` after
    /// the last such report.
    public func otherMembers(at now: Moment) -> ReplicaReport? {
        otherMembersSeen.flatMap { now - $0.at <= liveness ? $0.report : nil }
    }

    public func report(status: ReplicaReport.Status) -> ReplicaReport {
        ReplicaReport(replica: me, instance: instance, head: head, status: status, members: members)
    }

    /// Records the heads this replica reached `now`, one for each position it consumed, in order.
    public mutating func applied(_ heads: [ChainHead], at now: Moment) {
        for new in heads {
            precondition(new.position == head.position + 1, "the head moves one position at a time: \(head) then \(new)")
            head = new
            record(new)
        }
        for id in members where id != me { compare(id) }
        recount(at: now)
    }

    /// Takes a peer's report, received `now`. Reports from non-members, and from replicas with
    /// another member list (`otherMembers`), are not counted.
    public mutating func received(_ report: ReplicaReport, at now: Moment) {
        if report.replica == me {
            if report.instance != instance { impostorSeen = (report, now) }
            return
        }
        if !report.members.isEmpty && report.members != members {
            otherMembersSeen = (report, now)
            return
        }
        guard members.contains(report.replica) else { return }
        var peer = peers[report.replica] ?? Peer(instance: report.instance, lastHeard: now, status: report.status)
        if peer.instance != report.instance {
            if report.instance == peer.previousInstance { peer.duplicateSeen = now }
            // A restart (or the other of two processes): what the earlier one said no longer counts.
            peer = Peer(instance: report.instance, previousInstance: peer.instance, duplicateSeen: peer.duplicateSeen,
                        lastHeard: now, status: report.status)
        }
        peer.lastHeard = now
        peer.status = report.status
        if report.head.position >= peer.latest?.position ?? 0 { peer.latest = report.head }
        if report.head.position > peer.agreed && !peer.pending.contains(report) {
            peer.pending.append(report)
            peer.pending.sort { $0.head.position < $1.head.position }
            if peer.pending.count > Self.pendingLimit { peer.pending.removeFirst(peer.pending.count - Self.pendingLimit) }
        }
        peers[report.replica] = peer
        compare(report.replica)
        recount(at: now)
    }

    /// A report arrived that did not authenticate, claiming to come from `claimed` (unverified).
    public mutating func unauthentic(claimed: String, at now: Moment) {
        unauthenticSeen = (claimed, now)
    }

    /// The member that should append: the first in `members` order that is ready, heard within
    /// `liveness` and agrees with this replica so far; nil when there is none.
    public func sequencer(at now: Moment, selfReady: Bool) -> String? {
        members.first { id in
            if id == me { return selfReady }
            guard let peer = peers[id] else { return false }
            return peer.status == .ready && peer.disagreement == nil && now - peer.lastHeard <= liveness
        }
    }

    /// Members heard within `liveness` (this replica included).
    public func live(at now: Moment) -> [String] {
        members.filter { $0 == me || peers[$0].map { now - $0.lastHeard <= liveness } == true }
    }

    /// The status this replica reports: `broken` when the log broke under it, `caughtUp` once
    /// it has applied what the log held when it started.
    public func status(broken: Bool, caughtUp: Bool, at now: Moment) -> ReplicaReport.Status {
        if broken || isOutvoted || impostor(at: now) != nil { return .diverged }
        return caughtUp && foreignKey(at: now) == nil && otherMembers(at: now) == nil ? .ready : .catchingUp
    }

    /// Whether this replica may take requests now (`QuorumHealth.refusal`), and why not.
    public func health(broken: LogBreak?, caughtUp: Bool, at now: Moment) -> QuorumHealth {
        if let impostor = impostor(at: now) { return .impostor(impostor) }
        if broken != nil || isOutvoted { return .diverged(broken, disagreements) }
        if let other = otherMembers(at: now) { return .otherMembers(other, mine: members) }
        if let claimed = foreignKey(at: now) { return .foreignKey(claimed: claimed) }
        if !caughtUp { return .catchingUp }
        // A peer on another chain cannot help confirm anything past the fork: without a majority
        // that agrees, nothing is signed, and health says so rather than `ready`.
        let agreeing = live(at: now).filter { $0 == me || peers[$0]?.disagreement == nil }
        return agreeing.count < majority ? .noQuorum(live: agreeing) : .ready
    }

    public var description: String {
        "Confirmations(\(me) of \(members), head \(head), confirmed \(confirmed), disagreements \(disagreements.map(\.peer)))"
    }

    // MARK: Rules

    private mutating func record(_ head: ChainHead) {
        recent[Int(head.position % UInt64(recent.count))] = head
    }

    /// Compares the peer's pending reports that this replica has caught up with.
    private mutating func compare(_ id: String) {
        guard var peer = peers[id] else { return }
        while let report = peer.pending.first, report.head.position <= head.position {
            peer.pending.removeFirst()
            guard let mine = head(at: report.head.position) else { continue }  // too old to compare
            if mine == report.head {
                peer.agreed = max(peer.agreed, mine.position)
            } else if peer.disagreement == nil {
                peer.disagreement = Disagreement(peer: id, mine: mine, theirs: report.head)
            }
        }
        peers[id] = peer
    }

    /// `confirmed` becomes the highest position that a majority (this replica included) agrees
    /// on. A peer that later disagreed still counts up to `agreed`: its chain equals this one
    /// there. Nothing counts while two processes share a replica id.
    private mutating func recount(at now: Moment) {
        guard impostor(at: now) == nil else { return }
        var positions = [head.position]
        for id in members where id != me {
            guard let peer = peers[id] else { positions.append(0); continue }
            let distrusted = peer.duplicateSeen.map { now - $0 <= liveness * 10 } ?? false
            positions.append(distrusted ? 0 : peer.agreed)
        }
        positions.sort(by: >)
        confirmed = max(confirmed, positions[majority - 1])
    }
}
