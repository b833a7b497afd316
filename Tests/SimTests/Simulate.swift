import Foundation
import Sim

/// Runs `seeds` in turn, on a thread of its own, up to the first violation if `untilViolation`.
/// Simulations are CPU-bound for seconds; on the tests' cooperative threads (as many as the
/// machine has cores) they stalled every other test of the process (a full run's
/// NotaryClientTests missed its deadline so).
func runSeeds<Outcome: Sendable>(_ seeds: some Sequence<UInt64>, untilViolation: Bool, violated: @escaping @Sendable (Outcome) -> Bool,
                                 _ run: @escaping @Sendable (UInt64) -> Outcome) async -> [Outcome] {
    let seeds = Array(seeds)
    return await withCheckedContinuation { continuation in
        Thread {
            var outcomes: [Outcome] = []
            for seed in seeds {
                outcomes.append(run(seed))
                if untilViolation, let last = outcomes.last, violated(last) { break }
            }
            continuation.resume(returning: outcomes)
        }.start()
    }
}

func simulate(_ seeds: some Sequence<UInt64>, _ settings: LeaseElectionSim.Settings = .init(),
              untilViolation: Bool = false) async -> [LeaseElectionSim.Outcome] {
    await runSeeds(seeds, untilViolation: untilViolation, violated: { $0.violation != nil }) { LeaseElectionSim.run(seed: $0, settings: settings) }
}

/// The first violation among seeds 1-50.
func firstViolation(_ settings: LeaseElectionSim.Settings) async -> SimViolation? {
    await simulate(1...50, settings, untilViolation: true).last?.violation
}
