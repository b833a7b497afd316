import Coordination
import HawserCore
import HawserTestSupport
import Notary
import Testing

/// The quorum rule: an outcome is signed only once a majority has applied the same chain up to it.
@Suite(.timeLimit(.minutes(10))) struct ConfirmationsTests {
    static let members = ["r0", "r1", "r2"]

    /// The chain of branch `branch`, which shares every position before `fork` with the others.
    static func head(_ position: UInt64, branch: Int = 0, fork: UInt64 = .max) -> ChainHead {
        let name = position < fork ? "common-\(position)" : "branch\(branch)-\(position)"
        return ChainHead(position: position, entryHash: .sha256(Array(name.utf8)), stateHash: .sha256(Array("s\(name)".utf8)))
    }

    static func at(_ millis: Int64) -> Moment { Moment(nanoseconds: millis * 1_000_000) }

    /// The heads from `from + 1` through `to` of one branch, as a replica applies them.
    static func heads(through to: UInt64, from: UInt64 = 0, branch: Int = 0, fork: UInt64 = .max) -> [ChainHead] {
        (from + 1...to).map { head($0, branch: branch, fork: fork) }
    }

    func report(_ replica: String, _ head: ChainHead, instance: UInt64 = 1, status: ReplicaReport.Status = .ready) -> ReplicaReport {
        ReplicaReport(replica: replica, instance: instance, head: head, status: status)
    }

    /// Two live replicas on different chains, the third silent: neither is outvoted, and nothing
    /// past the fork can be confirmed; health says so (`noQuorum`) instead of `ready`.
    @Test func aPeerOnAnotherChainDoesNotCountTowardsAQuorum() {
        var c = Confirmations(members: Self.members, me: "r0", instance: 1, head: .genesis)
        c.applied(Self.heads(through: 6, branch: 0, fork: 5), at: Self.at(0))
        c.received(report("r1", Self.head(6, branch: 1, fork: 5)), at: Self.at(1))
        #expect(c.health(broken: nil, caughtUp: true, at: Self.at(2)) == .noQuorum(live: ["r0"]))
        // The third, on r0's chain, makes a majority again.
        c.received(report("r2", Self.head(6, branch: 0, fork: 5)), at: Self.at(3))
        #expect(c.health(broken: nil, caughtUp: true, at: Self.at(4)) == .ready)
        #expect(c.confirmed == 6)
    }

    /// What a majority of the members report having applied, compared with this replica's chain
    /// or not: the log must hold at least that far (`Quorum.logLost`).
    @Test func theFurthestHeadAMajorityReportsCountsEveryReport() {
        var c = Confirmations(members: Self.members, me: "r0", instance: 1, head: .genesis)
        c.applied(Self.heads(through: 3), at: Self.at(0))
        #expect(c.majorityReached == nil, "no peer heard: no majority reports anything")
        c.received(report("r1", Self.head(7)), at: Self.at(1))
        #expect(c.majorityReached == Self.head(3), "r0 and r1 both reached 3")
        c.received(report("r2", Self.head(5)), at: Self.at(2))
        #expect(c.majorityReached == Self.head(5), "r1 and r2 both reached 5, which r0 has not compared")
        c.received(report("r2", Self.head(4)), at: Self.at(3))
        #expect(c.majorityReached == Self.head(5), "an older report does not move it back")
    }

    /// Reports that do not authenticate, and none that does: this replica runs with another key.
    /// It is not ready and does not sequence while that lasts; an authentic peer, or the silence
    /// of the others for `liveness`, ends it (garbage on the subject cannot stop a replica that
    /// hears its peers).
    @Test func unauthenticReportsWithNoAuthenticPeerMeanAnotherKey() {
        var c = Confirmations(members: Self.members, me: "r0", instance: 1, head: .genesis, liveness: .milliseconds(1_500))
        c.applied(Self.heads(through: 2), at: Self.at(0))
        c.unauthentic(claimed: "r1", at: Self.at(10))
        #expect(c.health(broken: nil, caughtUp: true, at: Self.at(20)) == .foreignKey(claimed: "r1"))
        #expect(c.status(broken: false, caughtUp: true, at: Self.at(20)) == .catchingUp)
        #expect(c.sequencer(at: Self.at(20), selfReady: false) == nil)
        // Silence for longer than `liveness`: no longer evidence of anything.
        #expect(c.health(broken: nil, caughtUp: true, at: Self.at(1_600)) == .noQuorum(live: ["r0"]))
        // An authentic peer heard: the unauthentic reports are someone else's.
        c.unauthentic(claimed: "r1", at: Self.at(2_000))
        c.received(report("r2", Self.head(2)), at: Self.at(2_010))
        #expect(c.health(broken: nil, caughtUp: true, at: Self.at(2_020)) == .ready)
        #expect(c.status(broken: false, caughtUp: true, at: Self.at(2_020)) == .ready)
    }

    /// A report with another member list is not counted, and makes this replica refuse requests
    /// and not sequence for `liveness` after the last one. A report without a list (an older
    /// version) is counted as before.
    @Test func aReportWithAnotherMemberListIsNotCountedAndStopsRequests() {
        var c = Confirmations(members: Self.members, me: "r0", instance: 1, head: .genesis, liveness: .milliseconds(1_500))
        c.applied(Self.heads(through: 2), at: Self.at(0))
        var other = report("r1", Self.head(2))
        other.members = ["r1", "r2", "r3"]
        c.received(other, at: Self.at(10))
        #expect(c.health(broken: nil, caughtUp: true, at: Self.at(20)) == .otherMembers(other, mine: Self.members))
        #expect(c.status(broken: false, caughtUp: true, at: Self.at(20)) == .catchingUp)
        #expect(c.live(at: Self.at(20)) == ["r0"] && c.confirmed == 0)
        #expect(c.sequencer(at: Self.at(20), selfReady: false) == nil)
        // Its own list, or none (a version that did not send one): counted.
        c.received(report("r2", Self.head(2)), at: Self.at(30))
        var same = report("r1", Self.head(2))
        same.members = Self.members
        c.received(same, at: Self.at(40))
        #expect(c.confirmed == 2 && c.live(at: Self.at(50)) == Self.members)
        #expect(c.health(broken: nil, caughtUp: true, at: Self.at(50)) == .otherMembers(other, mine: Self.members))
        // Not heard for longer than `liveness`: the notary serves again.
        c.received(same, at: Self.at(1_600))
        c.received(report("r2", Self.head(2)), at: Self.at(1_600))
        #expect(c.health(broken: nil, caughtUp: true, at: Self.at(1_700)) == .ready)
    }

    /// Only heads the replica reached are remembered: an empty slot answers for no position
    /// (one once answered for 2^64 - 1 with a made-up head, found from outside).
    @Test func aPositionNotReachedHasNoHead() {
        var c = Confirmations(members: Self.members, me: "r0", instance: 1, head: .genesis, memory: 8)
        c.applied(Self.heads(through: 3), at: Self.at(0))
        #expect(c.head(at: 3) == Self.head(3))
        for position in [4, 7, UInt64.max, UInt64.max - 5] { #expect(c.head(at: position) == nil, "\(position)") }
    }

    @Test func aNotaryOnItsOwnConfirmsWhatItApplies() {
        var c = Confirmations(members: ["local"], me: "local", instance: 1, head: Self.head(3))
        #expect(c.confirmed == 3)
        c.applied([Self.head(4)], at: Self.at(0))
        #expect(c.confirmed == 4)
    }

    @Test func aPositionIsConfirmedOnceAPeerReportsTheSameChainThroughIt() {
        var c = Confirmations(members: Self.members, me: "r0", instance: 1, head: .genesis)
        c.applied(Self.heads(through: 5), at: Self.at(0))
        #expect(c.confirmed == 0, "alone, one of three confirms nothing")
        c.received(report("r1", Self.head(3)), at: Self.at(1))
        #expect(c.confirmed == 3)
        // A peer ahead of this replica confirms nothing until this replica has applied as far.
        c.received(report("r2", Self.head(9)), at: Self.at(2))
        #expect(c.confirmed == 3)
        c.applied(Self.heads(through: 9, from: 5), at: Self.at(3))
        #expect(c.confirmed == 9)
        #expect(c.disagreements.isEmpty)
    }

    @Test func aPeerOnAnotherBranchConfirmsNothingBeyondTheFork() {
        var c = Confirmations(members: Self.members, me: "r0", instance: 1, head: .genesis)
        c.applied(Self.heads(through: 8, branch: 0, fork: 5), at: Self.at(0))
        c.received(report("r1", Self.head(4, branch: 1, fork: 5)), at: Self.at(1))
        #expect(c.confirmed == 4)
        c.received(report("r1", Self.head(7, branch: 1, fork: 5)), at: Self.at(2))
        #expect(c.confirmed == 4, "r1 agrees only up to the fork")
        let outvoted = c.isOutvoted
        #expect(c.disagreements.map(\.peer) == ["r1"] && !outvoted)
        c.received(report("r2", Self.head(8, branch: 2, fork: 5)), at: Self.at(3))
        #expect(c.confirmed == 4)
        let outvotedNow = c.isOutvoted
        #expect(outvotedNow, "both others disagree: no majority can include this replica")
        #expect(c.sequencer(at: Self.at(4), selfReady: false) == nil, "no member that agrees is ready")
    }

    @Test func theSequencerIsTheFirstReadyLiveMemberThatAgrees() {
        var c = Confirmations(members: Self.members, me: "r1", instance: 1, head: .genesis, liveness: .seconds(1))
        #expect(c.sequencer(at: Self.at(0), selfReady: true) == "r1", "r0 was never heard from")
        c.received(report("r0", .genesis, status: .catchingUp), at: Self.at(0))
        #expect(c.sequencer(at: Self.at(0), selfReady: true) == "r1", "r0 is not ready")
        c.received(report("r0", .genesis), at: Self.at(100))
        #expect(c.sequencer(at: Self.at(200), selfReady: true) == "r0")
        #expect(c.sequencer(at: Self.at(1_200), selfReady: true) == "r1", "r0 fell silent for longer than the liveness")
        #expect(c.live(at: Self.at(1_200)) == ["r1"])
    }

    @Test func twoProcessesWithOneReplicaIdConfirmNothing() {
        var c = Confirmations(members: Self.members, me: "r0", instance: 1, head: .genesis, liveness: .seconds(1))
        c.received(report("r0", .genesis, instance: 2), at: Self.at(0))
        #expect(c.impostor(at: Self.at(1))?.instance == 2)
        c.applied(Self.heads(through: 3), at: Self.at(2))
        c.received(report("r1", Self.head(3)), at: Self.at(3))
        #expect(c.confirmed == 0, "this replica does not count while another process runs as it")
        #expect(c.impostor(at: Self.at(20_000)) == nil, "an impostor not heard from for long is forgotten")

        // A peer whose reports alternate between two instances is two processes: it does not count.
        var d = Confirmations(members: Self.members, me: "r0", instance: 1, head: .genesis, liveness: .seconds(1))
        d.applied(Self.heads(through: 3), at: Self.at(0))
        d.received(report("r1", Self.head(1), instance: 7), at: Self.at(1))
        d.received(report("r1", Self.head(2), instance: 8), at: Self.at(2))
        d.received(report("r1", Self.head(3), instance: 7), at: Self.at(3))
        #expect(d.confirmed == 2, "what the first process said up to the flap counts; nothing after")
        d.received(report("r1", Self.head(3), instance: 7), at: Self.at(4))
        #expect(d.confirmed == 2)
    }

    @Test func aRestartedPeerMustReportAgain() {
        var c = Confirmations(members: Self.members, me: "r0", instance: 1, head: .genesis)
        c.applied(Self.heads(through: 6), at: Self.at(0))
        c.received(report("r1", Self.head(6, branch: 1, fork: 4), instance: 1), at: Self.at(1))
        #expect(c.disagreements.count == 1)
        // Restored from a good snapshot, r1 starts again with a new instance.
        c.received(report("r1", Self.head(6), instance: 2), at: Self.at(2))
        #expect(c.disagreements.isEmpty && c.confirmed == 6)
    }

    /// Three replicas apply chains that may fork anywhere, into two or three branches, and hear
    /// each other's reports late, twice, out of order or never. Whatever any replica confirms, a
    /// majority applied exactly its chain up to there, so no two confirmations contradict; and
    /// where a majority shares a branch, it does confirm beyond the fork.
    @Test func noTwoReplicasConfirmContradictingChains() {
        var confirmedPastAFork = 0
        for seed in UInt64(0)..<300 {
            var random = SeededGenerator(seed: seed)
            let fork = UInt64.random(in: 1...30, using: &random)
            let branches = (0..<3).map { _ in Int.random(in: 0..<(Bool.random(using: &random) ? 2 : 3), using: &random) }
            let lengths = (0..<3).map { _ in UInt64.random(in: 0...40, using: &random) }
            var replicas = (0..<3).map { Confirmations(members: Self.members, me: Self.members[$0], instance: 1, head: .genesis, memory: 64) }
            var inFlight = [(to: Int, report: ReplicaReport)]()
            for step in 0..<400 {
                let now = Self.at(Int64(step))
                let i = Int.random(in: 0..<3, using: &random)
                if Bool.random(using: &random), replicas[i].head.position < lengths[i] {
                    replicas[i].applied([Self.head(replicas[i].head.position + 1, branch: branches[i], fork: fork)], at: now)
                    for peer in 0..<3 where peer != i { inFlight.append((peer, replicas[i].report(status: .ready))) }
                } else if !inFlight.isEmpty {
                    let k = Int.random(in: 0..<inFlight.count, using: &random)
                    let (to, message) = inFlight[k]
                    replicas[to].received(message, at: now)
                    if Int.random(in: 0..<4, using: &random) != 0 { inFlight.remove(at: k) }  // else delivered again later
                }
            }
            for x in 0..<3 {
                let confirmed = replicas[x].confirmed
                guard confirmed > 0 else { continue }
                if confirmed >= fork { confirmedPastAFork += 1 }
                let mine = Self.head(confirmed, branch: branches[x], fork: fork)
                let alike = (0..<3).filter { y in
                    lengths[y] >= confirmed && Self.head(confirmed, branch: branches[y], fork: fork) == mine
                }
                #expect(alike.count >= 2, "seed \(seed): r\(x) confirmed \(confirmed) but only \(alike) hold that chain")
                for y in 0..<3 where replicas[y].confirmed >= confirmed {
                    #expect(Self.head(confirmed, branch: branches[y], fork: fork) == mine,
                            "seed \(seed): r\(x) and r\(y) confirmed contradicting chains at \(confirmed)")
                }
            }
        }
        #expect(confirmedPastAFork > 50, "majorities on one branch confirm past the fork (\(confirmedPastAFork) replicas did)")
    }
}
