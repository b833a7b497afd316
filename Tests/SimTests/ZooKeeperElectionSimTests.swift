import Coordination
import Foundation
import Sim
import Testing

/// The ZooKeeper election's real cores (`ElectionCore`) and its real decisions on ZooKeeper
/// (`ZooKeeperProgram`) under the seeded simulator, against an in-memory ZooKeeper whose sessions
/// expire. `HAWSER_SIM_SEEDS` (`1-5000` or `7,12`) chooses the seeds; the suite runs 1-100.
@Suite(.timeLimit(.minutes(10))) struct ZooKeeperElectionSimTests {
    static let seeds: [UInt64] = {
        guard let text = ProcessInfo.processInfo.environment["HAWSER_SIM_SEEDS"] else { return Array(1...100) }
        return SeedList.parse(text) ?? []
    }()

    func simulate(_ seeds: some Sequence<UInt64>, _ settings: ZooKeeperElectionSim.Settings = .init(),
                  untilViolation: Bool = false) async -> [ZooKeeperElectionSim.Outcome] {
        await runSeeds(seeds, untilViolation: untilViolation, violated: { $0.violation != nil }) {
            ZooKeeperElectionSim.run(seed: $0, settings: settings)
        }
    }

    /// Never two leaders, only epochs of one's own claims, and a leader once the faults stop, on
    /// every seed.
    @Test func everySeedKeepsTheElectionsInvariants() async {
        var terms = 0, faults = 0, expired = 0
        for outcome in await simulate(Self.seeds, untilViolation: true) {
            if let violation = outcome.violation {
                Issue.record("\(violation)")
                return
            }
            terms += outcome.terms
            faults += outcome.faults
            expired += outcome.expiredSessions
        }
        // The runs must have exercised something: many faults, sessions lost, leadership moved.
        #expect(faults > Self.seeds.count * 20, "\(faults) faults")
        #expect(terms > Self.seeds.count * 5, "\(terms) terms")
        #expect(expired > Self.seeds.count, "\(expired) sessions expired")
    }

    /// A seed replays exactly; another seed is another run.
    @Test func aSeedReplaysExactly() async {
        let runs = await simulate([42, 42, 43])
        #expect(runs[0].digest == runs[1].digest && runs[0].events == runs[1].events)
        #expect(runs[0].digest != runs[2].digest)
    }

    /// The checks find a planted bug: a leader that goes on acting for longer than its session
    /// outlives it at the server overlaps with the candidate that claims after the expiry.
    @Test func aLeaderThatOutlivesItsSessionIsCaught() async throws {
        var settings = ZooKeeperElectionSim.Settings()
        settings.timing.validity = settings.configuration.sessionTimeout * 3
        let violation = try #require(await simulate(1...50, settings, untilViolation: true).last?.violation)
        #expect(violation.what.contains("two leaders at once"), "\(violation)")
    }

    /// The liveness check fires too: confirmations that always come too late elect nobody.
    @Test func anElectionThatNeverConfirmsALeaderIsCaught() async throws {
        var settings = ZooKeeperElectionSim.Settings()
        settings.timing.validity = .zero
        let violation = try #require(await simulate(1...50, settings, untilViolation: true).last?.violation)
        #expect(violation.what.contains("no leader"), "\(violation)")
    }
}
