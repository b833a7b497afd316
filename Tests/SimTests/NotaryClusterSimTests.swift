import Foundation
import Sim
import Testing

/// The notary's replicas under the simulator (docs/simulation.md): every seed holds the
/// invariants, a seed replays exactly, the faults bite, and each rule broken on purpose is caught.
@Suite(.timeLimit(.minutes(10))) struct NotaryClusterSimTests {
    /// `HAWSER_SIM_SEEDS` (N, FIRST-LAST or A,B,C) runs other seeds.
    static let seeds = ProcessInfo.processInfo.environment["HAWSER_SIM_SEEDS"].flatMap(SeedList.parse) ?? Array(1...100)

    @Test func everySeedHoldsTheInvariants() async {
        let outcomes = await simulateCluster(Self.seeds)
        let broken = outcomes.filter { $0.violation != nil }
        #expect(broken.isEmpty, "\(broken.count) seeds broke an invariant, the first: \(broken.first.map { "\($0.violation!)" } ?? "")")
        #expect(outcomes.allSatisfy { $0.signed > 0 }, "seeds that signed nothing: \(outcomes.filter { $0.signed == 0 }.map(\.seed))")
        #expect(outcomes.allSatisfy { $0.faults > 0 }, "seeds without faults: \(outcomes.filter { $0.faults == 0 }.map(\.seed))")
        if Self.seeds.count >= 20 {
            #expect(outcomes.contains { $0.stopped > 0 }, "the faults stop a replica now and then")
        }
    }

    /// The defect the simulation found: a replica whose log server served another entry became
    /// the sequencer before it heard that the others disagreed, chained its next entry to that
    /// one, and both others stopped at the fork. `unconfirmed-tail` is the appender before the
    /// fix (seed 15 halts the cluster); the fixed appender builds only on a confirmed head.
    @Test func aSequencerWhoseServerDivergedDoesNotStopTheOthers() async {
        var before = NotaryClusterSim.Settings()
        before.mutation = .unconfirmedTail
        let halted = await simulateCluster([15], before)[0]
        #expect(halted.violation != nil && halted.stopped >= 2, "seed 15 no longer shows the defect: \(halted)")
        let run = await simulateCluster([15])[0]
        #expect(run.violation == nil, "\(run.violation.map { "\($0)" } ?? "")")
        // It goes on past where the old rule halted (until the late `truncate` of this seed).
        #expect(run.entries > halted.entries * 5, "\(run.entries) entries, \(halted.entries) with the old rule")
    }

    @Test func aSeedReplaysExactly() async {
        let runs = await simulateCluster([7, 7])
        #expect(runs[0].digest == runs[1].digest && runs[0].events == runs[1].events && runs[0].violation == nil)
    }

    @Test(arguments: ClusterMutation.allCases)
    func aBrokenRuleIsCaught(_ mutation: ClusterMutation) async {
        var settings = NotaryClusterSim.Settings()
        settings.mutation = mutation
        let outcomes = await simulateCluster(1...50, settings, untilViolation: true)
        #expect(outcomes.last?.violation != nil, "\(mutation.rawValue) went unnoticed in seeds 1-50")
    }
}

func simulateCluster(_ seeds: some Sequence<UInt64>, _ settings: NotaryClusterSim.Settings = .init(),
                     untilViolation: Bool = false) async -> [NotaryClusterSim.Outcome] {
    await runSeeds(seeds, untilViolation: untilViolation, violated: { $0.violation != nil }) { NotaryClusterSim.run(seed: $0, settings: settings) }
}
