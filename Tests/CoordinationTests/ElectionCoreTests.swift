import Coordination
import Logging
import Testing

/// The election core's decisions, driven by hand: no store, clock or sleep.
@Suite(.timeLimit(.minutes(10))) struct ElectionCoreTests {
    static let timing = ElectionTiming(validity: .milliseconds(1800), holdDown: .seconds(3), standAside: .seconds(4),
                                       duplicateGrace: .seconds(3))

    static func at(_ ms: Int64) -> Moment { Moment(nanoseconds: ms * 1_000_000) }

    static func view(_ holder: String?, epoch: UInt64, preferred: String? = nil, target: String? = nil,
                     standing: Set<String> = ["A", "B"], duplicate: Bool = false) -> ElectionView {
        ElectionView(holder: holder, epoch: Epoch(epoch), preferred: preferred, target: target, standing: standing, duplicate: duplicate)
    }

    static func request(mayAcquire: Bool = true, aside: Bool = false, highest: UInt64 = 0, leading: UInt64? = nil) -> ElectionCore.Action {
        .round(RoundRequest(healthy: mayAcquire || aside, mayAcquire: mayAcquire, standingAside: aside, highestSeen: Epoch(highest),
                            leadingWith: leading.map(Epoch.init)))
    }

    /// A healthy candidate whose first round (sent at `ms`) showed it holding `epoch`.
    static func leader(epoch: UInt64 = 1, at ms: Int64 = 0) -> ElectionCore {
        var core = ElectionCore(me: "A", timing: timing)
        _ = core.health(problem: nil, now: at(ms))
        _ = core.tick(now: at(ms))
        _ = core.roundSucceeded(view("A", epoch: epoch), now: at(ms + 10))
        return core
    }

    @Test func aCandidateStandsOnlyOnceHealthyAndLeadsWithTheEpochShown() {
        var core = ElectionCore(me: "A", timing: Self.timing)
        #expect(core.tick(now: Self.at(0)) == [.round(RoundRequest(healthy: false, mayAcquire: false, standingAside: false, highestSeen: .zero))])
        _ = core.roundSucceeded(Self.view(nil, epoch: 6), now: Self.at(5))
        #expect(core.status == ElectionStatus(role: .notStanding, leader: nil))
        #expect(core.health(problem: nil, now: Self.at(500)) == [.report(.healthy)])
        #expect(core.status.role == .follower)
        #expect(core.tick(now: Self.at(500)) == [Self.request(highest: 6)])
        #expect(core.roundSucceeded(Self.view("A", epoch: 7), now: Self.at(510)) == [.report(.leading(Epoch(7)))])
        #expect(core.status == ElectionStatus(role: .leader(Epoch(7)), leader: "A"))
    }

    @Test func noSecondRoundWhileOneIsInFlight() {
        var core = Self.leader()
        #expect(core.tick(now: Self.at(500)) == [Self.request(highest: 1, leading: 1)])
        #expect(core.tick(now: Self.at(1000)) == [])
    }

    @Test func leadershipLastsFromWhenTheRoundWasSentAndTheStatusFollows() {
        var core = Self.leader()
        #expect(core.leading?.validUntil == Self.at(1800))
        #expect(core.checkExpiry(now: Self.at(1799)) == [])
        #expect(core.checkExpiry(now: Self.at(1800)) == [.report(.steppedDown(Epoch(1), reason: "leadership not confirmed in time"))])
        #expect(core.status.role == .follower)
    }

    /// What a process asks before it serves a request (`Election.leadsNow`): whether the
    /// confirmation is valid now, whether or not the expiry's step-down has run yet (a process
    /// paused past its lease answered ready for some milliseconds after it ran again).
    @Test func theDriverSaysALapsedLeadershipIsOverBeforeItsStepDownRuns() {
        let driver = ElectionDriver(Self.leader(), logger: .init(label: "test"))
        #expect(driver.leads(at: Self.at(1799)))
        #expect(!driver.leads(at: Self.at(1800)))
        #expect(!ElectionDriver(ElectionCore(me: "A", timing: Self.timing), logger: .init(label: "test")).leads(at: Self.at(0)))
    }

    @Test func failedRoundsKeepTheLeaderOnlyUntilItsConfirmationLapsesAndAreReportedOncePerChange() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))
        #expect(core.roundFailed(problem: "refused", now: Self.at(600)) == [.report(.storeProblem("refused"))])
        _ = core.tick(now: Self.at(1000))
        #expect(core.roundFailed(problem: "refused", now: Self.at(1100)) == [])
        _ = core.tick(now: Self.at(1500))
        #expect(core.roundFailed(problem: "unknown role", now: Self.at(1850))
            == [.report(.steppedDown(Epoch(1), reason: "leadership not confirmed in time")), .report(.storeProblem("unknown role"))])
        _ = core.tick(now: Self.at(2000))
        #expect(core.roundSucceeded(Self.view("B", epoch: 2), now: Self.at(2010)) == [.report(.storeRecovered)])
    }

    @Test func anAnswerThatArrivesTooLateDoesNotMakeALeader() {
        var core = ElectionCore(me: "A", timing: Self.timing)
        _ = core.health(problem: nil, now: Self.at(0))
        _ = core.tick(now: Self.at(0))
        #expect(core.roundSucceeded(Self.view("A", epoch: 1), now: Self.at(1900)) == [])
        #expect(!core.isLeader && core.status.role == .follower)
    }

    @Test func anAnswerSentBeforeAConnectionLossIsIgnored() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))
        #expect(core.connectionLost(reason: "suspended", now: Self.at(510)) == [.report(.steppedDown(Epoch(1), reason: "suspended"))])
        #expect(core.roundSucceeded(Self.view("A", epoch: 1), now: Self.at(520)) == [])
        #expect(!core.isLeader)
        // A later round finds the lease still ours, but the term ended: it is taken anew.
        #expect(core.tick(now: Self.at(600)) == [Self.request(highest: 1)])
        #expect(core.roundSucceeded(Self.view("A", epoch: 1), now: Self.at(610)) == [])
        _ = core.tick(now: Self.at(700))
        #expect(core.roundSucceeded(Self.view("A", epoch: 2), now: Self.at(710)) == [.report(.leading(Epoch(2)))])
    }

    /// Defect A of the fault run: a round failed with its expired ZooKeeper session, the shell
    /// reported neither success nor failure, and the core waited for that round for ever, so the
    /// candidate never stood again on its new session.
    @Test func aRoundInFlightWhenTheConnectionIsLostIsAbandonedAndTheNextTickStartsOne() {
        var core = Self.leader()
        #expect(core.tick(now: Self.at(500)) == [Self.request(highest: 1, leading: 1)])
        _ = core.connectionLost(reason: "session lost", now: Self.at(3000))
        #expect(core.tick(now: Self.at(3100)) == [Self.request(highest: 1)])
        #expect(core.roundSucceeded(Self.view("A", epoch: 2), now: Self.at(3110)) == [.report(.leading(Epoch(2)))])
    }

    /// Found by the simulator (`ShardSimTests`): a leader stepped down (its confirmation lapsed)
    /// and the store then renewed its unexpired lease, so it led again with the same epoch, and a
    /// late write of its first term could not be told from its second by fencing. Now a round
    /// says which epoch it leads with; one that does not lead gets a new epoch, and an answer to
    /// a round sent before the step-down does not restore the ended term.
    @Test func aTermThatEndedIsNeverResumedWithItsEpoch() {
        var core = Self.leader()
        #expect(core.tick(now: Self.at(500)) == [Self.request(highest: 1, leading: 1)])
        // The round hangs past validity: stepped down; its late answer renews epoch 1.
        _ = core.checkExpiry(now: Self.at(2000))
        #expect(!core.isLeader)
        #expect(core.roundSucceeded(Self.view("A", epoch: 1), now: Self.at(2010)) == [])
        #expect(!core.isLeader, "the ended term is not resumed")
        #expect(core.tick(now: Self.at(2100)) == [Self.request(highest: 1)], "the next round asks as one that does not lead")
        #expect(core.roundSucceeded(Self.view("A", epoch: 2), now: Self.at(2110)) == [.report(.leading(Epoch(2)))])
    }

    /// A follower names the leader its last round showed only while that leadership could still
    /// be valid: once the store has not answered for as long, it names nobody, until a round
    /// shows a leader again.
    @Test func aFollowerForgetsTheLeaderItCannotConfirm() {
        var core = ElectionCore(me: "A", timing: Self.timing)
        _ = core.health(problem: nil, now: Self.at(0))
        _ = core.tick(now: Self.at(0))
        _ = core.roundSucceeded(Self.view("B", epoch: 3), now: Self.at(10))
        #expect(core.status == ElectionStatus(role: .follower, leader: "B"))
        _ = core.tick(now: Self.at(500))
        _ = core.roundFailed(problem: "connection refused", now: Self.at(600))
        #expect(core.status.leader == "B", "one failed round: B may well lead still")
        _ = core.tick(now: Self.at(1000))
        _ = core.roundFailed(problem: "connection refused", now: Self.at(1100))
        _ = core.checkExpiry(now: Self.at(1799))
        #expect(core.status.leader == "B")
        _ = core.checkExpiry(now: Self.at(1800))
        #expect(core.status == ElectionStatus(role: .follower, leader: nil))
        _ = core.tick(now: Self.at(2000))
        _ = core.roundSucceeded(Self.view("B", epoch: 3), now: Self.at(2010))
        #expect(core.status == ElectionStatus(role: .follower, leader: "B"))
    }

    @Test func losingLeadershipInTheStoreStepsDown() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))
        #expect(core.roundSucceeded(Self.view("B", epoch: 2), now: Self.at(510)) == [.report(.steppedDown(Epoch(1), reason: "leadership held by B"))])
        #expect(core.status == ElectionStatus(role: .follower, leader: "B"))
    }

    @Test func anUnhealthyLeaderStepsDownReleasesWithdrawsAndStandsAside() {
        var core = Self.leader()
        #expect(core.health(problem: "disk full", now: Self.at(100))
            == [.report(.steppedDown(Epoch(1), reason: "unhealthy: disk full")), .release(Epoch(1), handOverTo: nil), .withdraw,
                .report(.unhealthy("disk full"))])
        #expect(core.status.role == .notStanding)
        #expect(core.health(problem: "disk full", now: Self.at(150)) == [])  // reported once
        _ = core.health(problem: nil, now: Self.at(200))
        #expect(core.tick(now: Self.at(500)) == [Self.request(aside: true, highest: 1)])
        _ = core.roundSucceeded(Self.view(nil, epoch: 1), now: Self.at(510))
        #expect(core.tick(now: Self.at(4100)) == [Self.request(highest: 1)])
    }

    @Test func aSwitchoverToAStandingCandidateHandsOverAndOneToAnAbsentOneIsDropped() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))
        #expect(core.roundSucceeded(Self.view("A", epoch: 1, target: "C"), now: Self.at(510)) == [.clearTarget])
        #expect(core.isLeader)
        _ = core.tick(now: Self.at(1000))
        #expect(core.roundSucceeded(Self.view("A", epoch: 1, target: "B"), now: Self.at(1010))
            == [.report(.steppedDown(Epoch(1), reason: "switchover to B")), .release(Epoch(1), handOverTo: "B")])
        // It does not stand aside: the store keeps the lease for B while B is alive, and lets A
        // take it back if B never comes.
        #expect(core.tick(now: Self.at(1500)) == [Self.request(highest: 1)])
    }

    @Test func aTargetTakesOverEvenWhileStandingAside() {
        var core = Self.leader()
        _ = core.resign(now: Self.at(100))  // stands aside for 4 s
        #expect(core.tick(now: Self.at(200)) == [Self.request(aside: true, highest: 1)])
        // B led and handed straight back to A: the store let A take it as the target (clearing it), and A leads.
        #expect(core.roundSucceeded(Self.view("A", epoch: 3), now: Self.at(210)) == [.report(.leading(Epoch(3)))])
        #expect(core.status.role == .leader(Epoch(3)))
    }

    @Test func handingOverToACandidateNotSeenStandingGoesThroughTheStore() {
        var core = Self.leader()
        #expect(core.handOver(to: "C", now: Self.at(100)) == [.requestSwitchover("C")])
        #expect(core.isLeader)  // its next round hands over if C stands by then, or drops the request
        #expect(core.handOver(to: "A", now: Self.at(100)) == [])
        var follower = ElectionCore(me: "B", timing: Self.timing)
        #expect(follower.handOver(to: "A", now: Self.at(0)) == [.requestSwitchover("A")])
    }

    @Test func thePreferredMasterTakesOverAfterTheHoldDown() {
        var core = Self.leader()
        var now: Int64 = 500
        var handedOver: [ElectionCore.Action] = []
        while handedOver.isEmpty && now < 10_000 {
            _ = core.tick(now: Self.at(now))
            handedOver = core.roundSucceeded(Self.view("A", epoch: 1, preferred: "B"), now: Self.at(now + 10))
            now += 500
        }
        // First seen standing at 510; the hold-down of 3 s ends at 3510.
        #expect(now - 500 == 3500)
        #expect(handedOver == [.report(.steppedDown(Epoch(1), reason: "preferred master B is back")), .release(Epoch(1), handOverTo: "B")])
    }

    @Test func aRoundSentBeforeResigningDoesNotRestoreLeadership() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))  // in flight
        #expect(core.resign(now: Self.at(520)) == [.report(.steppedDown(Epoch(1), reason: "resigned")), .release(Epoch(1), handOverTo: nil)])
        #expect(core.roundSucceeded(Self.view("A", epoch: 1), now: Self.at(530)) == [.release(Epoch(1), handOverTo: nil)])
        #expect(!core.isLeader && core.status.role == .follower)
    }

    @Test func anEpochBelowOneAlreadySeenIsNeverLedWith() {
        var core = Self.leader(epoch: 9)
        _ = core.tick(now: Self.at(500))
        // The record was rewound: the store says A holds it with 4.
        #expect(core.roundSucceeded(Self.view("A", epoch: 4), now: Self.at(510))
            == [.report(.steppedDown(Epoch(9), reason: "epoch went back")), .report(.epochWentBack(offered: Epoch(4), seen: Epoch(9))),
                .release(Epoch(4), handOverTo: nil)])
        #expect(!core.isLeader)
        #expect(core.tick(now: Self.at(1000)) == [Self.request(highest: 9)])
    }

    @Test func aDuplicateNeverLeadsAndGivesUpAfterTheGrace() {
        var core = ElectionCore(me: "A", timing: Self.timing)
        _ = core.health(problem: nil, now: Self.at(0))
        _ = core.tick(now: Self.at(0))
        #expect(core.roundSucceeded(Self.view("A", epoch: 5, duplicate: true), now: Self.at(10)) == [.report(.duplicateSeen)])
        #expect(!core.isLeader && core.status.role == .notStanding)
        #expect(core.tick(now: Self.at(500)) == [.round(RoundRequest(healthy: true, mayAcquire: false, standingAside: false, highestSeen: Epoch(5)))])
        _ = core.roundSucceeded(Self.view("A", epoch: 5, duplicate: true), now: Self.at(510))
        _ = core.tick(now: Self.at(1000))
        _ = core.roundSucceeded(Self.view("A", epoch: 5, duplicate: true), now: Self.at(1010))
        _ = core.tick(now: Self.at(3000))
        #expect(core.roundSucceeded(Self.view("A", epoch: 5, duplicate: true), now: Self.at(3010)) == [.fail(.duplicateCandidate("A"))])
        #expect(core.status == ElectionStatus(role: .notStanding, leader: nil))
        #expect(core.tick(now: Self.at(3500)) == [])
    }

    /// Found by the ZooKeeper election's simulation (seed 1): a restarted candidate saw its
    /// previous instance's node, then its rounds failed for longer than the grace (a flaky
    /// connection), and it gave up for good although the other instance had long gone.
    @Test func failedRoundsAfterADuplicateDoNotMakeTheCandidateGiveUp() {
        var core = ElectionCore(me: "A", timing: Self.timing)
        _ = core.health(problem: nil, now: Self.at(0))
        _ = core.tick(now: Self.at(0))
        _ = core.roundSucceeded(Self.view(nil, epoch: 5, duplicate: true), now: Self.at(10))
        for second in 1...5 {
            #expect(!core.tick(now: Self.at(Int64(second) * 1000)).contains(.fail(.duplicateCandidate("A"))))
            _ = core.roundFailed(problem: "timed out", now: Self.at(Int64(second) * 1000 + 500))
        }
        _ = core.tick(now: Self.at(6000))
        _ = core.roundSucceeded(Self.view(nil, epoch: 5), now: Self.at(6010))
        #expect(core.tick(now: Self.at(7000)) == [Self.request(highest: 5)])
    }

    @Test func aPredecessorThatGoesWithinTheGraceIsNoDuplicate() {
        var core = ElectionCore(me: "A", timing: Self.timing)
        _ = core.health(problem: nil, now: Self.at(0))
        _ = core.tick(now: Self.at(0))
        _ = core.roundSucceeded(Self.view(nil, epoch: 5, duplicate: true), now: Self.at(10))
        _ = core.tick(now: Self.at(2000))
        _ = core.roundSucceeded(Self.view(nil, epoch: 5), now: Self.at(2010))
        #expect(core.tick(now: Self.at(5000)) == [Self.request(highest: 5)])
    }

    @Test func stoppingStepsDownThenReleases() {
        var core = Self.leader()
        #expect(core.stop() == [.report(.steppedDown(Epoch(1), reason: "stopping")), .release(Epoch(1), handOverTo: nil)])
        #expect(core.status == ElectionStatus(role: .notStanding, leader: nil))
    }
}
