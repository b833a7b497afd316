import Coordination
import Foundation
import Sim
import Testing

/// The lease election's real cores (`ElectionCore`, `LeaseRules`) under the seeded simulator:
/// thousands of fault schedules a minute, each replayable from its seed.
/// `HAWSER_SIM_SEEDS` (`1-5000` or `7,12`) chooses the seeds; the suite runs 1-100.
@Suite(.timeLimit(.minutes(10))) struct LeaseElectionSimTests {
    static let seeds: [UInt64] = {
        guard let text = ProcessInfo.processInfo.environment["HAWSER_SIM_SEEDS"] else { return Array(1...100) }
        return SeedList.parse(text) ?? []
    }()

    /// Never two leaders, epochs granted once and never going back, and a leader once the faults
    /// stop, on every seed.
    @Test func everySeedKeepsTheElectionsInvariants() async {
        var terms = 0, faults = 0
        for outcome in await simulate(Self.seeds, untilViolation: true) {
            if let violation = outcome.violation {
                Issue.record("\(violation)")
                return
            }
            terms += outcome.terms
            faults += outcome.faults
        }
        // The runs must have exercised something: many faults, and leadership that moved.
        #expect(faults > Self.seeds.count * 20, "\(faults) faults")
        #expect(terms > Self.seeds.count * 5, "\(terms) terms")
    }

    /// A seed replays exactly; another seed is another run.
    @Test func aSeedReplaysExactly() async {
        let runs = await simulate([42, 42, 43])
        let (first, again, other) = (runs[0], runs[1], runs[2])
        #expect(first.digest == again.digest)
        #expect(first.events == again.events)
        #expect(first.digest != other.digest)
    }

    /// The checks find a planted bug: leaders that act for longer than the lease lasts (no safety
    /// margin, and more) overlap with their successors.
    @Test func aLeaderThatOutlivesItsLeaseIsCaught() async throws {
        var settings = LeaseElectionSim.Settings()
        settings.timing.validity = settings.configuration.leaseDuration * 2
        let violation = try #require(await firstViolation(settings))
        #expect(violation.what.contains("two leaders at once"), "\(violation)")
    }

    /// Clocks that drift further apart than the safety margin covers (a tenth of the lease) are
    /// outside the model, and the checks see what that costs.
    @Test func clocksFasterThanTheMarginAreCaught() async throws {
        var settings = LeaseElectionSim.Settings()
        settings.faults.drift = 0.4
        let violation = try #require(await firstViolation(settings))
        #expect(violation.what.contains("two leaders at once"), "\(violation)")
    }

    /// The liveness check fires too: a candidate whose confirmations are always too late never
    /// leads.
    @Test func anElectionThatNeverConfirmsALeaderIsCaught() async throws {
        var settings = LeaseElectionSim.Settings()
        settings.timing.validity = .zero
        let violation = try #require(await firstViolation(settings))
        #expect(violation.what.contains("no leader"), "\(violation)")
    }
}
