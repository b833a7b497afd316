import Foundation
import Sim
import Testing

/// Nodes paying each other through flow sessions under the simulator (docs/simulation.md): every
/// seed holds the invariants, a seed replays exactly, the faults bite, and each rule broken on
/// purpose is caught.
@Suite(.timeLimit(.minutes(10))) struct SessionNetworkSimTests {
    /// `HAWSER_SIM_SEEDS` (N, FIRST-LAST or A,B,C) runs other seeds.
    static let seeds = ProcessInfo.processInfo.environment["HAWSER_SIM_SEEDS"].flatMap(SeedList.parse) ?? Array(1...100)

    @Test func everySeedHoldsTheInvariants() async {
        let outcomes = await simulateSessions(Self.seeds)
        let broken = outcomes.filter { $0.violation != nil }
        #expect(broken.isEmpty, "\(broken.count) seeds broke an invariant, the first: \(broken.first.map { "\($0.violation!)" } ?? "")")
        #expect(outcomes.allSatisfy { $0.paid > 0 }, "seeds without a payment paid: \(outcomes.filter { $0.paid == 0 }.map(\.seed))")
        // One amount in nine is refused: about four payments a seed.
        #expect(outcomes.map(\.refused).reduce(0, +) > outcomes.count, "too few refused payments to test the refunds")
        #expect(outcomes.allSatisfy { $0.faults > 0 }, "seeds without faults: \(outcomes.filter { $0.faults == 0 }.map(\.seed))")
    }

    @Test func aSeedReplaysExactly() async {
        let runs = await simulateSessions([7, 7])
        #expect(runs[0].digest == runs[1].digest && runs[0].events == runs[1].events && runs[0].violation == nil)
    }

    /// Without faults and without lost or duplicated messages, every message is delivered once.
    @Test func aQuietNetworkDeliversEachMessageOnce() async {
        var settings = SessionNetworkSim.Settings()
        (settings.faults, settings.loss, settings.slow, settings.duplicate) = ([], 0, 0, 0)
        let run = await simulateSessions([3], settings)[0]
        #expect(run.violation == nil, "\(run.violation.map { "\($0)" } ?? "")")
        // Paid: initiate, amount, receipt, and each side's close. Refused: initiate, amount, and
        // the responder's error (the payer's session has ended, so it sends no close).
        #expect(run.paid > 0 && run.refused > 0 && run.deliveries == 5 * run.paid + 3 * run.refused,
                "\(run.deliveries) deliveries for \(run.paid) paid and \(run.refused) refused")
    }

    @Test(arguments: SessionMutation.allCases)
    func aBrokenRuleIsCaught(_ mutation: SessionMutation) async {
        var settings = SessionNetworkSim.Settings()
        settings.mutation = mutation
        let outcomes = await simulateSessions(1...50, settings, untilViolation: true)
        #expect(outcomes.last?.violation != nil, "\(mutation.rawValue) went unnoticed in seeds 1-50")
    }
}

func simulateSessions(_ seeds: some Sequence<UInt64>, _ settings: SessionNetworkSim.Settings = .init(),
                      untilViolation: Bool = false) async -> [SessionNetworkSim.Outcome] {
    await runSeeds(seeds, untilViolation: untilViolation, violated: { $0.violation != nil }) { SessionNetworkSim.run(seed: $0, settings: settings) }
}
