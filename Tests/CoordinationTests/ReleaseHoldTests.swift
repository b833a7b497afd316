import Coordination
import Testing

/// Stop, then release: a leader whose work runs and that gives leadership up of its own accord
/// releases it in the store only once the work stopped, or after the bound (`timing.validity`,
/// 1.8 s here); an involuntary loss holds nothing. Driven by hand, as `ElectionCoreTests`.
@Suite(.timeLimit(.minutes(10))) struct ReleaseHoldTests {
    typealias T = ElectionCoreTests

    /// A leader at epoch 1 whose owner's work runs.
    static func working() -> ElectionCore {
        var core = T.leader()
        let started = core.workStarted(Epoch(1))
        #expect(started)
        return core
    }

    @Test func aSwitchoverWithWorkRunningReleasesForTheTargetOnlyOnceTheWorkStopped() {
        var core = Self.working()
        _ = core.tick(now: T.at(500))
        #expect(core.roundSucceeded(T.view("A", epoch: 1, target: "B"), now: T.at(510))
            == [.report(.steppedDown(Epoch(1), reason: "switchover to B"))])
        #expect(core.status.role == .notStanding, "the work is told to stop at once; until it stopped, A does not stand")
        #expect(core.tick(now: T.at(1000)) == [], "no round: it would renew what is being given up")
        #expect(core.workStopped(now: T.at(1200)) == [.release(Epoch(1), handOverTo: "B")])
        #expect(core.status == ElectionStatus(role: .follower, leader: nil))
        #expect(core.workStopped(now: T.at(1300)) == [], "released once")
        #expect(core.tick(now: T.at(1500)) == [T.request(highest: 1)])
    }

    /// The owner decided to start while leading, but the core gave leadership up (and released it
    /// at once: no work ran) before the owner said so: the work must not start, and nothing is held.
    @Test func workStartsOnlyUnderTheLeadershipItWasDecidedFor() {
        var core = T.leader()
        _ = core.handOver(to: "B", now: T.at(100))
        let started = core.workStarted(Epoch(1))
        #expect(!started)
        #expect(!core.isHoldingRelease)
        #expect(core.tick(now: T.at(200)) == [T.request(highest: 1)], "nothing runs: it stands at once")
        var other = T.leader(epoch: 2)
        let otherStarted = other.workStarted(Epoch(1))
        #expect(!otherStarted, "not the epoch it leads with")
    }

    @Test func withoutWorkRunningLeadershipIsReleasedAtOnce() {
        var core = Self.working()
        #expect(core.workStopped(now: T.at(100)) == [])
        #expect(core.handOver(to: "B", now: T.at(200)) == [.report(.steppedDown(Epoch(1), reason: "handing over to B")),
                                                           .release(Epoch(1), handOverTo: "B")])
    }

    @Test func aStopThatHangsHoldsLeadershipForTheBoundAtMost() {
        var core = Self.working()
        #expect(core.resign(now: T.at(100)) == [.report(.steppedDown(Epoch(1), reason: "resigned"))])
        #expect(core.tick(now: T.at(1899)) == [])
        // Released, and standing aside (4 s) from the release, not from the resignation.
        #expect(core.tick(now: T.at(1900))
            == [.report(.workStopOverdue), .release(Epoch(1), handOverTo: nil), Self.notStanding(aside: true, highest: 1)])
        _ = core.roundSucceeded(T.view(nil, epoch: 1), now: T.at(1910))
        #expect(core.workStopped(now: T.at(6000)) == [], "nothing left to release")
        #expect(core.tick(now: T.at(6000)) == [T.request(highest: 1)], "stands again: its stand-aside is over")
    }

    /// Failed before: the stop hangs past the bound, the lease reserved for the target lapses,
    /// and the old leader took leadership back, though it cannot begin a term until its work
    /// stopped: a leader that never serves. It does not stand until then.
    @Test func aCandidateWhoseStopHangsDoesNotStandUntilItStopped() {
        var core = Self.working()
        _ = core.tick(now: T.at(500))
        _ = core.roundSucceeded(T.view("A", epoch: 1, target: "B"), now: T.at(510))
        #expect(core.tick(now: T.at(2310)) == [.report(.workStopOverdue), .release(Epoch(1), handOverTo: "B"),
                                               Self.notStanding(highest: 1)])
        #expect(core.status.role == .notStanding)
        // Were it offered to A all the same, A would give it straight back, reserved for B.
        #expect(core.roundSucceeded(T.view("A", epoch: 2), now: T.at(2320)) == [.release(Epoch(2), handOverTo: "B")])
        #expect(!core.isLeader)
        #expect(core.tick(now: T.at(2400)) == [Self.notStanding(highest: 2)])
        _ = core.roundSucceeded(T.view(nil, epoch: 2), now: T.at(2410))
        #expect(core.workStopped(now: T.at(9000)) == [])
        #expect(core.status.role == .follower)
        #expect(core.tick(now: T.at(9000)) == [T.request(highest: 2)])
    }

    static func notStanding(aside: Bool = false, highest: UInt64) -> ElectionCore.Action {
        .round(RoundRequest(healthy: false, mayAcquire: false, standingAside: aside, highestSeen: Epoch(highest)))
    }

    @Test func anUnhealthyLeaderReleasesAndWithdrawsOnceItsWorkStopped() {
        var core = Self.working()
        #expect(core.health(problem: "disk full", now: T.at(100))
            == [.report(.steppedDown(Epoch(1), reason: "unhealthy: disk full")), .report(.unhealthy("disk full"))])
        #expect(core.status.role == .notStanding)
        #expect(core.workStopped(now: T.at(300)) == [.release(Epoch(1), handOverTo: nil), .withdraw])
    }

    @Test func aResignationStandsAsideFromTheRelease() {
        var core = Self.working()
        _ = core.resign(now: T.at(100))
        #expect(core.workStopped(now: T.at(1000)) == [.release(Epoch(1), handOverTo: nil)])
        // 4.1 s after the resignation, 3.1 s after the release: still standing aside.
        #expect(core.tick(now: T.at(4200)) == [T.request(aside: true, highest: 1)])
    }

    @Test func aRoundSentBeforeResigningIsGivenBackWithTheHeldRelease() {
        var core = Self.working()
        _ = core.tick(now: T.at(500))
        _ = core.resign(now: T.at(520))
        #expect(core.roundSucceeded(T.view("A", epoch: 1), now: T.at(530)) == [])
        #expect(!core.isLeader)
        #expect(core.workStopped(now: T.at(600)) == [.release(Epoch(1), handOverTo: nil)])
    }

    @Test func losingLeadershipWithoutChoosingHoldsNothing() {
        var lapsed = Self.working()
        #expect(lapsed.checkExpiry(now: T.at(1800)) == [.report(.steppedDown(Epoch(1), reason: "leadership not confirmed in time"))])
        // Nothing to release; it stands again once its work stopped.
        #expect(lapsed.tick(now: T.at(1900)) == [Self.notStanding(highest: 1)])
        _ = lapsed.roundSucceeded(T.view(nil, epoch: 1), now: T.at(1910))
        #expect(lapsed.workStopped(now: T.at(2000)) == [])
        #expect(lapsed.tick(now: T.at(2000)) == [T.request(highest: 1)])

        var lost = Self.working()
        _ = lost.connectionLost(reason: "session expired", now: T.at(100))
        #expect(lost.tick(now: T.at(200)) == [Self.notStanding(highest: 1)])
    }

    @Test func stoppingReleasesWhatIsHeldAtOnce() {
        var core = Self.working()
        _ = core.resign(now: T.at(100))
        #expect(core.stop() == [.release(Epoch(1), handOverTo: nil)])
    }

    /// A graceful stop lets go of the held release just before the shell stops, whose cancelled
    /// task may lose it: stopping releases the last epoch led once more (a no-op in the store
    /// once that epoch is no longer this candidate's).
    @Test func stoppingReleasesTheLastEpochLedOnceMore() {
        var core = Self.working()
        _ = core.handOver(to: "B", now: T.at(100))
        #expect(core.workStopped(now: T.at(200)) == [.release(Epoch(1), handOverTo: "B")])
        #expect(core.stop() == [.release(Epoch(1), handOverTo: nil)])
        var never = ElectionCore(me: "A", timing: T.timing)
        #expect(never.stop() == [])
    }
}
