import Foundation
import Glibc
import Sim

/// Runs `seeds` in turn, on a thread of its own at the lowest priority, up to the first violation
/// if `untilViolation`. Simulations are CPU-bound for seconds; on the tests' cooperative threads
/// (as many as the machine has cores) they stalled every other test of the process (a full run's
/// NotaryClientTests missed its deadline so). On threads of their own at the normal priority,
/// the twenty or so of them outnumbered the two cooperative threads ten to one for the cores,
/// and on CI's two cores the tests beside them waited out 60 s deadlines.
func runSeeds<Outcome: Sendable>(_ seeds: some Sequence<UInt64>, untilViolation: Bool, violated: @escaping @Sendable (Outcome) -> Bool,
                                 _ run: @escaping @Sendable (UInt64) -> Outcome) async -> [Outcome] {
    let seeds = Array(seeds)
    return await withCheckedContinuation { continuation in
        Thread {
            // On Linux the nice value is the calling thread's alone (setpriority(2), BUGS).
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
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
