import Coordination
import Testing

/// The rules every lease database applies in its transactions, on rows made by hand.
@Suite(.timeLimit(.minutes(10))) struct LeaseRulesTests {
    static let configuration: LeaseConfiguration = {
        var configuration = LeaseConfiguration()
        configuration.leaseDuration = .seconds(2)
        configuration.renewInterval = .milliseconds(500)
        configuration.requestTimeout = .milliseconds(500)  // a hand-over window of 1 s
        return configuration
    }()
    static let now: Int64 = 1_000_000

    static func row(_ id: String, healthy: Bool = true, seenAgo: Int64 = 100, instance: String? = nil) -> CandidateRow {
        CandidateRow(candidate: Candidate(id: id), healthy: healthy, seenMs: now - seenAgo, instance: instance ?? "i-\(id)")
    }

    static func state(holder: String?, epoch: UInt64, expiresIn: Int64, target: String? = nil, preferred: String? = nil,
                      candidates: [CandidateRow] = [row("A"), row("B"), row("C")]) -> LeaseState {
        LeaseState(nowMs: now, lease: LeaseRow(holder: holder, epoch: Epoch(epoch), expiresMs: now + expiresIn, preferred: preferred, target: target),
                   candidates: candidates)
    }

    static func request(mayAcquire: Bool = true, aside: Bool = false, highest: UInt64 = 0, leading: UInt64? = nil) -> RoundRequest {
        RoundRequest(healthy: true, mayAcquire: mayAcquire, standingAside: aside, highestSeen: Epoch(highest), leadingWith: leading.map(Epoch.init))
    }

    static func round(_ state: LeaseState, _ me: String, _ request: RoundRequest = request(), instance: String? = nil) -> LeaseRules.RoundOutcome {
        LeaseRules.round(state, candidate: Candidate(id: me), instance: instance ?? "i-\(me)", request: request, configuration: configuration)
    }

    @Test func theSnapshotShowsEveryMemberWithItsRoleAndHealth() {
        let state = Self.state(holder: "B", epoch: 7, expiresIn: 500,
                               candidates: [Self.row("A"), Self.row("B"), Self.row("C", healthy: false), Self.row("D", seenAgo: 5_000)])
        let snapshot = LeaseRules.snapshot(state, configuration: Self.configuration)
        #expect(snapshot.members == [
            ElectionMember(id: "A", role: .standby, epoch: nil, healthy: true, addresses: []),
            ElectionMember(id: "B", role: .active, epoch: Epoch(7), healthy: true, addresses: []),
            ElectionMember(id: "C", role: .unhealthy, epoch: nil, healthy: false, addresses: []),
        ], "D was last seen longer than a lease ago: gone")
    }

    /// A holder that no longer leads with the lease's epoch (it stepped down meanwhile) takes the
    /// lease again under a new epoch: two terms of one candidate never share an epoch.
    @Test func aHolderThatSteppedDownTakesANewEpoch() {
        let state = Self.state(holder: "A", epoch: 3, expiresIn: 500)
        let taken = Self.round(state, "A", Self.request(highest: 3))
        #expect(taken.lease?.epoch == Epoch(4) && taken.lease?.holder == "A" && taken.view.holder == "A")
        #expect(Self.round(state, "A", Self.request(highest: 3, leading: 2)).lease?.epoch == Epoch(4), "an older term is no renewal either")
    }

    /// Which run of each standing candidate the view shows: a restart is another instance.
    @Test func theViewTellsRunsOfACandidateApart() {
        let state = Self.state(holder: "A", epoch: 3, expiresIn: 500,
                               candidates: [Self.row("A"), Self.row("B", instance: "b-2"), Self.row("D", seenAgo: 5_000)])
        #expect(Self.round(state, "A", Self.request(leading: 3)).view.incarnations == ["A": "i-A", "B": "b-2"])
    }

    @Test func theHolderRenewsAndOthersLeave() {
        let state = Self.state(holder: "A", epoch: 3, expiresIn: 500)
        let renewed = Self.round(state, "A", Self.request(leading: 3))
        #expect(renewed.lease?.expiresMs == Self.now + 2000 && renewed.lease?.epoch == Epoch(3))
        #expect(renewed.view.holder == "A" && renewed.candidate?.seenMs == Self.now)
        let other = Self.round(state, "B")
        #expect(other.lease == nil && other.view.holder == "A")
    }

    @Test func aFreeOrExpiredLeaseIsTakenWithAnEpochAboveAnySeen() {
        let expired = Self.state(holder: "A", epoch: 3, expiresIn: -1)
        #expect(Self.round(expired, "B").lease?.epoch == Epoch(4))
        #expect(Self.round(expired, "A").lease?.epoch == Epoch(4))  // a new term, a new epoch
        #expect(Self.round(expired, "B", Self.request(mayAcquire: false)).lease == nil)
        // The row was rewound to 3, but this candidate saw 9: the epoch still goes up.
        #expect(Self.round(expired, "B", Self.request(highest: 9)).lease?.epoch == Epoch(10))
    }

    @Test func aReleasedLeaseIsReservedForATargetOnlyWhileItRunsRounds() {
        // The window is 1 s: C ran a round 900 ms ago, so it is alive.
        let reserved = Self.state(holder: nil, epoch: 5, expiresIn: -5000, target: "C",
                                  candidates: [Self.row("B"), Self.row("C", seenAgo: 900)])
        #expect(Self.round(reserved, "B").lease == nil)
        #expect(Self.round(reserved, "C").lease == LeaseRow(holder: "C", epoch: Epoch(6), expiresMs: Self.now + 2000))
        // C has not run a round for the window: it died, anyone may take the lease (and clears the target).
        let lapsed = Self.state(holder: nil, epoch: 5, expiresIn: -10, target: "C", candidates: [Self.row("B"), Self.row("C", seenAgo: 1000)])
        #expect(Self.round(lapsed, "B").lease == LeaseRow(holder: "B", epoch: Epoch(6), expiresMs: Self.now + 2000))
        let unhealthy = Self.state(holder: nil, epoch: 5, expiresIn: -10, target: "C", candidates: [Self.row("B"), Self.row("C", healthy: false)])
        #expect(Self.round(unhealthy, "B").lease?.holder == "B")
    }

    @Test func aCandidateStandingAsideTakesOnlyWhatIsReservedForIt() {
        let free = Self.state(holder: nil, epoch: 5, expiresIn: -10)
        #expect(Self.round(free, "A", Self.request(aside: true)).lease == nil)
        let forA = Self.state(holder: nil, epoch: 5, expiresIn: -10, target: "A")
        #expect(Self.round(forA, "A", Self.request(aside: true)).lease?.holder == "A")
    }

    @Test func aSecondProcessWithTheSameIdNeitherTakesNorRenewsNorOverwritesTheRow() {
        let held = Self.state(holder: "A", epoch: 3, expiresIn: 500)
        let second = Self.round(held, "A", instance: "other")
        #expect(second.view.duplicate && second.lease == nil && second.candidate == nil)
        let free = Self.state(holder: nil, epoch: 3, expiresIn: -10)
        #expect(Self.round(free, "A", instance: "other").lease == nil)
        // The first process's row went stale (it died a lease ago): the newcomer takes its place.
        let stale = Self.state(holder: nil, epoch: 3, expiresIn: -3000, candidates: [Self.row("A", seenAgo: 2001)])
        let next = Self.round(stale, "A", instance: "other")
        #expect(!next.view.duplicate && next.candidate?.instance == "other" && next.lease?.holder == "A")
    }

    @Test func releaseOnlyByTheHolderOfThatEpoch() {
        let held = Self.state(holder: "A", epoch: 3, expiresIn: 500)
        #expect(LeaseRules.release(held, holder: "A", epoch: Epoch(2), handOverTo: nil) == nil)
        #expect(LeaseRules.release(held, holder: "B", epoch: Epoch(3), handOverTo: nil) == nil)
        #expect(LeaseRules.release(held, holder: "A", epoch: Epoch(3), handOverTo: "B")
            == LeaseRow(holder: nil, epoch: Epoch(3), expiresMs: Self.now, target: "B"))
    }

    @Test func aSwitchoverNeedsATargetSeenWithinTheHandOverWindow() throws {
        let state = Self.state(holder: "A", epoch: 3, expiresIn: 500,
                               candidates: [Self.row("A"), Self.row("B", seenAgo: 300), Self.row("C", seenAgo: 1500), Self.row("D", healthy: false)])
        #expect(try LeaseRules.setTarget(state, "B", configuration: Self.configuration)?.target == "B")
        #expect(try LeaseRules.setTarget(state, "A", configuration: Self.configuration) == nil)  // already leads
        for absent in ["C", "D", "E"] {
            #expect(throws: CoordinationError.unknownCandidate(absent)) { try LeaseRules.setTarget(state, absent, configuration: Self.configuration) }
        }
    }

    @Test func thePreferredMasterMustBeStanding() throws {
        let state = Self.state(holder: "A", epoch: 3, expiresIn: 500, candidates: [Self.row("A"), Self.row("B", seenAgo: 1500)])
        #expect(try LeaseRules.setPreferred(state, "B", configuration: Self.configuration).preferred == "B")
        #expect(try LeaseRules.setPreferred(state, nil, configuration: Self.configuration).preferred == nil)
        #expect(throws: CoordinationError.unknownCandidate("Z")) { try LeaseRules.setPreferred(state, "Z", configuration: Self.configuration) }
    }
}
