import Coordination
import Foundation
import Sim
import Testing

/// The hot-warm shard's real cores (`ElectionCore`, `LeaseRules`, `ShardCore`, `WriteFence`,
/// `StartupReplay`) under the seeded simulator: three candidates, each a shard shell running a
/// flow engine on one shared, fenced node database, through the election's faults.
/// `HAWSER_SIM_SEEDS` chooses the seeds, as for `LeaseElectionSimTests`; the suite runs 1-60.
@Suite(.timeLimit(.minutes(10))) struct ShardSimTests {
    static let seeds = ProcessInfo.processInfo.environment["HAWSER_SIM_SEEDS"] == nil ? Array(1...60) : LeaseElectionSimTests.seeds

    static var settings: LeaseElectionSim.Settings {
        var settings = LeaseElectionSim.Settings()
        settings.shard = ShardSettings()
        return settings
    }

    /// Never a flow step written twice (two owners at once), never a healthy flow parked as
    /// poison (defect C's hand-over window: 11 of seeds 1-200 before stop-then-release), each
    /// term at a higher epoch than the last, every flow finished or parked once the faults stop,
    /// and a process serving then.
    @Test func everySeedKeepsTheShardsInvariants() async {
        var done = 0
        for outcome in await simulate(Self.seeds, Self.settings) {
            done += outcome.flowsDone
            if let violation = outcome.violation { Issue.record("\(violation)") }
        }
        #expect(done > Self.seeds.count * 8, "the flows must run: \(done) finished")
    }

    /// The checks catch a database that does not fence: two owners write one flow.
    @Test func anUnfencedDatabaseIsCaught() async throws {
        var settings = Self.settings
        settings.shard?.fenced = false
        let violation = try #require(await firstViolation(settings))
        #expect(violation.what.contains("two owners ran it at once"), "\(violation)")
    }
}
