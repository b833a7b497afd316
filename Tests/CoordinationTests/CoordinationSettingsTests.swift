import Coordination
import Testing

@Suite(.timeLimit(.minutes(10))) struct PreferredMasterPolicyTests {
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

    /// A preferred node that crashed and restarted within a lease or session kept its id standing
    /// (the dead run's row or node lived on), and took over from runs that then died at once: an
    /// outside checker saw five hand-overs to short-lived processes in 20 s.
    @Test func aRestartOfThePreferredNodeStartsTheHoldDownAgain() {
        var policy = PreferredMasterPolicy(holdDown: .seconds(10))
        _ = policy.observe(now: Self.at(0), me: "A", preferred: "B", preferredStanding: true, incarnation: "b1")
        #expect(policy.observe(now: Self.at(10), me: "A", preferred: "B", preferredStanding: true, incarnation: "b2") == nil)
        #expect(policy.observe(now: Self.at(19), me: "A", preferred: "B", preferredStanding: true, incarnation: "b2") == nil)
        #expect(policy.observe(now: Self.at(20), me: "A", preferred: "B", preferredStanding: true, incarnation: "b2") == "B")
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

@Suite(.timeLimit(.minutes(10))) struct CoordinationSettingsTests {
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
