import Coordination
import ServiceLifecycle

/// A hot-cold process's ownership (a node, or a notary): its watchdog won the election and
/// started it with the epoch (`HAWSER_FENCE_EPOCH`), which the process's fence holds for its
/// whole life. This service makes one fenced write at start-up, so the database knows the epoch
/// and refuses the former owner from then on, and only then lets the API serve `work` (before,
/// the process is taking over: not ready, its requests held or answered `standby`). It ends the
/// process (the service group, so the process exits non-zero and its watchdog resigns) as soon
/// as a write is refused: a newer owner exists.
struct HotColdFence<Work: Sendable>: Service {
    /// The claiming write: the fencing check alone, in a transaction of its own.
    let claim: @Sendable () async throws -> Void
    /// Every write of the process that the fencing check refused.
    let refusals: AsyncStream<CoordinationError>
    let serving: ServingState<Work>
    let work: Work

    /// What the API says until the claim is made.
    static func takingOver(_ epoch: Epoch) -> ServingState<Work>.State { .takingOver("claiming the shard at epoch \(epoch)") }

    func run() async throws {
        try await claim()
        serving.set(.active(work))
        try await cancelWhenGracefulShutdown {
            for await error in refusals { throw error }
        }
    }
}

extension HAConfiguration {
    /// A hot-cold process's epoch, from the watchdog's environment variable; `role`: "node" or "notary".
    static func hotColdEpoch(environment: [String: String], role: String) throws -> Epoch {
        let name = fenceEpochVariable
        guard let text = environment[name] else {
            throw ConfigurationError(["ha.mode hot-cold: \(name) is not set; a hot-cold \(role) is started by `hawser watchdog`, which passes the epoch it won"])
        }
        // Digits only: `UInt64` also takes a leading `+`, which no watchdog writes.
        guard text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = UInt64(text), value > 0 else {
            throw ConfigurationError(["ha.mode hot-cold: \(name) must be a positive whole number (the epoch the watchdog won), not \"\(text.prefix(40))\""])
        }
        return Epoch(value)
    }
}
