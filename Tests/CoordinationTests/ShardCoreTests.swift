import Coordination
import Testing

/// The shard core's order of actions: claim before work, release before stop, one term at a time.
@Suite(.timeLimit(.minutes(10))) struct ShardCoreTests {
    static func leader(_ epoch: UInt64) -> ElectionStatus { ElectionStatus(role: .leader(Epoch(epoch)), leader: "A") }
    static let follower = ElectionStatus(role: .follower, leader: "B")

    @Test func winningHoldsTheFenceClaimsThenStartsAndServesOnlyOnceStarted() {
        var core = ShardCore()
        #expect(core.status(Self.leader(3)) == [.hold(Epoch(3)), .claim(Epoch(3), retry: false)])
        #expect(!core.isServing)
        #expect(core.claimed(Epoch(3)) == [.startWork(Epoch(3))])
        #expect(!core.isServing)
        #expect(core.workStarted(Epoch(3)) == [])
        #expect(core.isServing && core.phase == .active(Epoch(3)))
    }

    @Test func losingReleasesTheFenceBeforeStoppingAndWaitsForTheStopBeforeANewTerm() {
        var core = ShardCore()
        _ = core.status(Self.leader(3))
        _ = core.claimed(Epoch(3))
        _ = core.workStarted(Epoch(3))
        #expect(core.status(Self.follower) == [.release, .stopWork])
        #expect(core.otherLeader == "B" && !core.isServing)
        // Won again before the old term's work stopped: nothing until it has.
        #expect(core.status(Self.leader(5)) == [])
        #expect(core.workStopped() == [.hold(Epoch(5)), .claim(Epoch(5), retry: false)])
    }

    @Test func aLossDuringTheClaimDropsItsAnswer() {
        var core = ShardCore()
        _ = core.status(Self.leader(3))
        #expect(core.status(Self.follower) == [.release])
        #expect(core.claimed(Epoch(3)) == [])
        #expect(core.phase == .standby)
        // A newer epoch while claiming an older one: release, then claim the newer.
        _ = core.status(Self.leader(4))
        #expect(core.status(Self.leader(6)) == [.release, .hold(Epoch(6)), .claim(Epoch(6), retry: false)])
        #expect(core.claimed(Epoch(4)) == [])
        #expect(core.claimed(Epoch(6)) == [.startWork(Epoch(6))])
    }

    @Test func aBusyDatabaseIsClaimedAgainButARefusedClaimStepsDownForGood() {
        var core = ShardCore()
        _ = core.status(Self.leader(3))
        #expect(core.claimFailed(Epoch(3), problem: "database is locked", refused: false) == [.claim(Epoch(3), retry: true)])
        #expect(core.claimFailed(Epoch(3), problem: "stale_epoch", refused: true)
                == [.release, .stepDown("the claiming write at epoch 3 was refused: stale_epoch")])
        // The election still says leader until the resignation lands: not taken up again.
        #expect(core.status(Self.leader(3)) == [])
        #expect(core.status(Self.follower) == [])
        #expect(core.status(Self.leader(7)) == [.hold(Epoch(7)), .claim(Epoch(7), retry: false)])
    }

    @Test func aRefusedWriteStopsAtOnceAndStepsDown() {
        var core = ShardCore()
        _ = core.status(Self.leader(3))
        _ = core.claimed(Epoch(3))
        _ = core.workStarted(Epoch(3))
        #expect(core.writeRefused(problem: "stale") == [.release, .stopWork, .stepDown("a write was refused: stale")])
        #expect(!core.isServing)
        // The stopping work's own refusals change nothing more.
        #expect(core.writeRefused(problem: "not_owner") == [])
        #expect(core.workStopped() == [])
        #expect(core.phase == .standby)
    }

    @Test func aStartThatFailsOrLosesStopsTheWork() {
        var core = ShardCore()
        _ = core.status(Self.leader(3))
        _ = core.claimed(Epoch(3))
        #expect(core.workFailed(Epoch(3), problem: "disk") == [.release, .stopWork, .stepDown("the work could not start at epoch 3: disk")])
        #expect(core.workStarted(Epoch(3)) == [])
        _ = core.workStopped()

        _ = core.status(Self.follower)
        _ = core.status(Self.leader(4))
        _ = core.claimed(Epoch(4))
        #expect(core.status(Self.follower) == [.release, .stopWork])
        #expect(core.workStarted(Epoch(4)) == [], "a start that finishes after the loss must not serve")
        #expect(!core.isServing)
    }

    /// Random event orders: the core never serves while the election says it does not lead with
    /// that epoch, never starts work unclaimed, and every stop follows a release.
    @Test func invariantsHoldUnderRandomEvents() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var core = ShardCore()
            var fence: Epoch?
            var working = false
            var epoch: UInt64 = 1
            for _ in 0..<60 {
                let wasStopping = core.phase == .stopping
                let actions: [ShardCore.Action]
                switch Int.random(in: 0..<8, using: &generator) {
                case 0: epoch += 1; actions = core.status(Self.leader(epoch))
                case 1: actions = core.status(Self.follower)
                case 2: actions = core.claimed(Epoch(epoch))
                case 3: actions = core.claimFailed(Epoch(epoch), problem: "x", refused: Bool.random(using: &generator))
                case 4: actions = core.workStarted(Epoch(epoch))
                case 5:
                    if wasStopping { working = false }  // the shell reports the stop it was asked for
                    actions = core.workStopped()
                case 6: actions = core.writeRefused(problem: "x")
                default: actions = core.workFailed(Epoch(epoch), problem: "x")
                }
                for action in actions {
                    switch action {
                    case .hold(let e): #expect(!working); fence = e
                    case .release: fence = nil
                    case .startWork(let e): #expect(fence == e && !working); working = true
                    case .stopWork: #expect(fence == nil && working)
                    case .claim(let e, _): #expect(fence == e)
                    case .stepDown: break
                    case .finish: Issue.record("finished without a shutdown")
                    }
                }
                if core.isServing {
                    #expect(core.election.role.epoch == fence && fence != nil && working)
                }
            }
        }
    }

    @Test func aShutdownStopsTheWorkAndStepsDownBeforeItFinishesAndBeginsNoNewTerm() {
        var core = ShardCore()
        _ = core.status(Self.leader(3))
        _ = core.claimed(Epoch(3))
        _ = core.workStarted(Epoch(3))
        #expect(core.shutdown() == [.release, .stopWork, .stepDown("shutting down")])
        #expect(core.shutdown() == [])
        // The election still says leader until the resignation is seen: no new term.
        #expect(core.status(Self.leader(3)) == [])
        #expect(core.workStopped() == [.finish])
        #expect(core.status(Self.leader(4)) == [])

        var standby = ShardCore()
        #expect(standby.shutdown() == [.finish])
        var claiming = ShardCore()
        _ = claiming.status(Self.leader(3))
        #expect(claiming.shutdown() == [.release, .stepDown("shutting down"), .finish])
        #expect(claiming.claimed(Epoch(3)) == [])
    }
}
