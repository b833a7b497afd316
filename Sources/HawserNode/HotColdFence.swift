import Coordination
import Flows
import ServiceLifecycle

/// A hot-cold node's ownership: its watchdog won the election and started it with the epoch
/// (`HAWSER_FENCE_EPOCH`), which the node's fence holds for its whole life. This service makes
/// one fenced write at start-up, so the database knows the epoch and refuses the former owner
/// from then on, and ends the node (the service group, so the process exits non-zero and its
/// watchdog resigns) as soon as a write is refused: a newer owner exists.
struct HotColdFence: Service {
    let store: any FlowStore
    let refusals: AsyncStream<CoordinationError>

    /// The epoch from the watchdog's environment variable.
    static func epoch(environment: [String: String]) throws -> Epoch {
        let name = HAConfiguration.fenceEpochVariable
        guard let text = environment[name] else {
            throw ConfigurationError(["ha.mode hot-cold: \(name) is not set; a hot-cold node is started by `hawser watchdog`, which passes the epoch it won"])
        }
        guard let value = UInt64(text), value > 0 else {
            throw ConfigurationError(["ha.mode hot-cold: \(name) must be a positive whole number (the epoch the watchdog won), not \"\(text.prefix(40))\""])
        }
        return Epoch(value)
    }

    func run() async throws {
        _ = try await store.commit([])  // the fencing check alone
        try await cancelWhenGracefulShutdown {
            for await error in refusals { throw error }
        }
    }
}
