import Coordination
import Testing

/// The lease candidate's decisions, driven by hand: no database, clock or sleep.
@Suite struct LeaseCoreTests {
    static func configuration() -> LeaseConfiguration {
        var configuration = LeaseConfiguration()
        configuration.leaseDuration = .seconds(2)
        configuration.renewInterval = .milliseconds(500)
        configuration.holdDown = .seconds(3)
        configuration.standAside = .seconds(4)
        return configuration
    }

    static func at(_ ms: Int64) -> Moment { Moment(nanoseconds: ms * 1_000_000) }

    static func held(by holder: String?, epoch: UInt64, preferred: String? = nil, target: String? = nil,
                     standing: Set<String> = ["A", "B"]) -> LeaseObservation {
        LeaseObservation(holder: holder, epoch: Epoch(epoch), preferred: preferred, target: target, standing: standing)
    }

    /// A healthy candidate whose first round returned `epoch` held by itself, at `ms`.
    static func leader(epoch: UInt64 = 1, at ms: Int64 = 0) -> LeaseCandidateCore {
        var core = LeaseCandidateCore(me: "A", configuration: configuration())
        _ = core.health(healthy: true, now: at(ms))
        _ = core.tick(now: at(ms))
        _ = core.roundSucceeded(held(by: "A", epoch: epoch), now: at(ms + 10))
        return core
    }

    @Test func aHealthyCandidateAsksToAcquireAndLeadsWithTheEpochGranted() {
        var core = LeaseCandidateCore(me: "A", configuration: Self.configuration())
        #expect(core.tick(now: Self.at(0)) == [.round(mayAcquire: false, healthy: false)])  // health not known yet
        _ = core.roundSucceeded(Self.held(by: nil, epoch: 0), now: Self.at(5))
        _ = core.health(healthy: true, now: Self.at(500))
        #expect(core.tick(now: Self.at(500)) == [.round(mayAcquire: true, healthy: true)])
        #expect(core.roundSucceeded(Self.held(by: "A", epoch: 7), now: Self.at(510)) == [.leaderChanged("A"), .becomeLeader(Epoch(7))])
        #expect(core.leading?.epoch == Epoch(7))
    }

    @Test func noSecondRoundWhileOneIsInFlight() {
        var core = Self.leader()
        #expect(core.tick(now: Self.at(500)) == [.round(mayAcquire: true, healthy: true)])
        #expect(core.tick(now: Self.at(1000)) == [])
    }

    @Test func validityCountsFromWhenTheRoundWasSentMinusTheMargin() {
        var core = Self.leader()
        // Sent at 0: valid until 0 + 2000 - 200 = 1800 ms, however late the answer came.
        #expect(core.leading?.validUntil == Self.at(1800))
        #expect(core.checkExpiry(now: Self.at(1799)) == [])
        #expect(core.checkExpiry(now: Self.at(1800)) == [.stepDown(Epoch(1), reason: "lease not renewed in time")])
        #expect(!core.isLeader)
    }

    @Test func aRenewalExtendsLeadershipWithTheSameEpoch() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))
        #expect(core.roundSucceeded(Self.held(by: "A", epoch: 1), now: Self.at(520)) == [])
        #expect(core.leading?.validUntil == Self.at(2300))
    }

    @Test func failedRoundsKeepTheLeaderOnlyUntilItsLeaseCouldLapse() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))
        #expect(core.roundFailed(now: Self.at(1500)) == [])
        _ = core.tick(now: Self.at(1600))
        #expect(core.roundFailed(now: Self.at(1850)) == [.stepDown(Epoch(1), reason: "lease not renewed in time")])
    }

    @Test func anAnswerThatArrivesTooLateDoesNotMakeALeader() {
        var core = LeaseCandidateCore(me: "A", configuration: Self.configuration())
        _ = core.health(healthy: true, now: Self.at(0))
        _ = core.tick(now: Self.at(0))
        #expect(core.roundSucceeded(Self.held(by: "A", epoch: 1), now: Self.at(1900)) == [.leaderChanged("A")])
        #expect(!core.isLeader)
    }

    @Test func losingTheLeaseStepsDown() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))
        #expect(core.roundSucceeded(Self.held(by: "B", epoch: 2), now: Self.at(510))
            == [.leaderChanged("B"), .stepDown(Epoch(1), reason: "lease held by B")])
    }

    @Test func anUnhealthyLeaderStepsDownBeforeReleasingAndStandsAside() {
        var core = Self.leader()
        #expect(core.health(healthy: false, now: Self.at(100)) == [.stepDown(Epoch(1), reason: "unhealthy"), .release(Epoch(1), handOverTo: nil)])
        _ = core.health(healthy: true, now: Self.at(200))
        #expect(core.tick(now: Self.at(500)) == [.round(mayAcquire: false, healthy: true)])  // standing aside
        _ = core.roundSucceeded(Self.held(by: nil, epoch: 1), now: Self.at(510))
        #expect(core.tick(now: Self.at(4100)) == [.round(mayAcquire: true, healthy: true)])
    }

    @Test func aSwitchoverToAStandingCandidateHandsOver() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))
        #expect(core.roundSucceeded(Self.held(by: "A", epoch: 1, target: "B"), now: Self.at(510))
            == [.stepDown(Epoch(1), reason: "switchover to B"), .release(Epoch(1), handOverTo: "B")])
    }

    @Test func aSwitchoverToAnAbsentCandidateIsIgnored() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))
        #expect(core.roundSucceeded(Self.held(by: "A", epoch: 1, target: "C"), now: Self.at(510)) == [])
        #expect(core.isLeader)
    }

    @Test func thePreferredMasterTakesOverAfterTheHoldDown() {
        var core = Self.leader()
        var now: Int64 = 500
        var handedOver: [LeaseCandidateCore.Action] = []
        while handedOver.isEmpty && now < 10_000 {
            _ = core.tick(now: Self.at(now))
            handedOver = core.roundSucceeded(Self.held(by: "A", epoch: 1, preferred: "B"), now: Self.at(now + 10))
            now += 500
        }
        // First seen standing at 510; the hold-down of 3 s ends at 3510.
        #expect(now - 500 == 3500)
        #expect(handedOver == [.stepDown(Epoch(1), reason: "preferred master B is back"), .release(Epoch(1), handOverTo: "B")])
    }

    @Test func aRoundSentBeforeResigningDoesNotRestoreLeadership() {
        var core = Self.leader()
        _ = core.tick(now: Self.at(500))  // in flight
        #expect(core.resign(now: Self.at(520), handOverTo: "B", reason: "resigned")
            == [.stepDown(Epoch(1), reason: "resigned"), .release(Epoch(1), handOverTo: "B")])
        // The round renewed the lease before the release ran: give it back again.
        #expect(core.roundSucceeded(Self.held(by: "A", epoch: 1), now: Self.at(530)) == [.release(Epoch(1), handOverTo: "B")])
        #expect(!core.isLeader)
    }

    @Test func stoppingStepsDownThenReleases() {
        var core = Self.leader()
        #expect(core.stop() == [.stepDown(Epoch(1), reason: "stopping"), .release(Epoch(1), handOverTo: nil)])
    }
}

@Suite struct LeaseDecisionTests {
    @Test func theHolderRenewsAnUnexpiredLease() {
        let row = LeaseRow(holder: "A", epoch: Epoch(3), live: true)
        #expect(LeaseDecision.decide(row: row, me: "A", mayAcquire: false, standing: []) == .renew)
        #expect(LeaseDecision.decide(row: row, me: "B", mayAcquire: true, standing: []) == .leave)
    }

    @Test func anExpiredOrFreeLeaseIsTakenWithTheNextEpoch() {
        let expired = LeaseRow(holder: "A", epoch: Epoch(3), live: false)
        #expect(LeaseDecision.decide(row: expired, me: "B", mayAcquire: true, standing: []) == .acquire(Epoch(4), clearTarget: false))
        // Even by its former holder: a new term, a new epoch.
        #expect(LeaseDecision.decide(row: expired, me: "A", mayAcquire: true, standing: []) == .acquire(Epoch(4), clearTarget: false))
        #expect(LeaseDecision.decide(row: expired, me: "B", mayAcquire: false, standing: []) == .leave)
        let free = LeaseRow(holder: nil, epoch: Epoch(0), live: false)
        #expect(LeaseDecision.decide(row: free, me: "B", mayAcquire: true, standing: []) == .acquire(Epoch(1), clearTarget: false))
    }

    @Test func aFreeLeaseIsReservedForAStandingSwitchoverTarget() {
        let row = LeaseRow(holder: nil, epoch: Epoch(5), live: false, target: "C")
        #expect(LeaseDecision.decide(row: row, me: "B", mayAcquire: true, standing: ["B", "C"]) == .leave)
        #expect(LeaseDecision.decide(row: row, me: "C", mayAcquire: true, standing: ["B", "C"]) == .acquire(Epoch(6), clearTarget: true))
        // The target is gone: anyone may take it.
        #expect(LeaseDecision.decide(row: row, me: "B", mayAcquire: true, standing: ["B"]) == .acquire(Epoch(6), clearTarget: true))
    }
}

@Suite struct PreferredMasterPolicyTests {
    static func at(_ s: Int64) -> Moment { Moment(nanoseconds: s * 1_000_000_000) }

    @Test func movesOnlyAfterTheHoldDownWithoutABreak() {
        var policy = PreferredMasterPolicy(holdDown: .seconds(10))
        #expect(policy.observe(now: Self.at(0), me: "A", preferred: "B", preferredStanding: true) == nil)
        #expect(policy.observe(now: Self.at(9), me: "A", preferred: "B", preferredStanding: true) == nil)
        #expect(policy.observe(now: Self.at(10), me: "A", preferred: "B", preferredStanding: true) == "B")
    }

    @Test func aFlappingPreferredNodeStartsTheHoldDownAgain() {
        var policy = PreferredMasterPolicy(holdDown: .seconds(10))
        _ = policy.observe(now: Self.at(0), me: "A", preferred: "B", preferredStanding: true)
        _ = policy.observe(now: Self.at(8), me: "A", preferred: "B", preferredStanding: false)
        #expect(policy.observe(now: Self.at(9), me: "A", preferred: "B", preferredStanding: true) == nil)
        #expect(policy.observe(now: Self.at(18), me: "A", preferred: "B", preferredStanding: true) == nil)
        #expect(policy.observe(now: Self.at(19), me: "A", preferred: "B", preferredStanding: true) == "B")
    }

    @Test func changingThePreferredNodeStartsTheHoldDownAgain() {
        var policy = PreferredMasterPolicy(holdDown: .seconds(10))
        _ = policy.observe(now: Self.at(0), me: "A", preferred: "B", preferredStanding: true)
        #expect(policy.observe(now: Self.at(10), me: "A", preferred: "C", preferredStanding: true) == nil)
        #expect(policy.observe(now: Self.at(20), me: "A", preferred: "C", preferredStanding: true) == "C")
    }

    @Test func thePreferredLeaderOrNoPreferenceNeverMoves() {
        var policy = PreferredMasterPolicy(holdDown: .zero)
        #expect(policy.observe(now: Self.at(0), me: "A", preferred: "A", preferredStanding: true) == nil)
        #expect(policy.observe(now: Self.at(0), me: "A", preferred: nil, preferredStanding: false) == nil)
    }
}

@Suite struct CoordinationSettingsTests {
    @Test func leaseSettingsAreValidated() {
        var configuration = LeaseConfiguration()
        #expect(configuration.problems().isEmpty)
        configuration.renewInterval = .seconds(1)
        configuration.leaseDuration = .milliseconds(100)
        configuration.name = "bad name"
        configuration.holdDown = .seconds(-1)
        let problems = configuration.problems()
        #expect(problems.count == 5)
        #expect(throws: CoordinationError.self) { try configuration.validate() }
    }

    @Test func candidateIdsAreSafeInPathsAndSQL() {
        #expect((try? Candidate.validate(id: "node-a.1_x")) != nil)
        for bad in ["", "a/b", "a b", "x'y", String(repeating: "a", count: 65)] {
            #expect(throws: CoordinationError.self) { try Candidate.validate(id: bad) }
        }
    }

    @Test func errorsHaveStableCodesAndStatuses() {
        let stale = CoordinationError.staleEpoch(resource: "ledger", presented: Epoch(1), current: Epoch(2))
        #expect(stale.code == "stale_epoch" && stale.httpStatus == 409)
        #expect(stale.description.contains("epoch 1 is older than epoch 2"))
        #expect(CoordinationError.unknownCandidate("C").httpStatus == 404)
        #expect(CoordinationError.unavailable("x").code == "coordination_unavailable")
    }
}
