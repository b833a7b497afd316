import Flows
import Synchronization

/// What the node's RPC API serves with now. A single node is `active` with its one flow engine for
/// its whole life; a hot-warm node switches between `standby` and the engine of its current term
/// as `ShardService` wins and loses the shard. Every route reaches the engine through `engine()`,
/// so a request that begins after the node stopped serving gets the standby answer (and one under
/// way then gets it from `StandbyGate`).
final class ServingState: Sendable {
    enum State: Sendable {
        /// Owning the shard: requests go to this engine.
        case active(FlowEngine)
        /// Taking the shard over (claiming it, resuming its flows): not serving yet.
        case takingOver(String)
        /// Another process owns the shard (or none does); `active`: its first advertised URL, if known.
        case standby(active: String?)
    }

    private let state: Mutex<State>
    /// The last health problem the node found (its database unreachable), for `/health/ready`.
    private let problem = Mutex<String?>(nil)

    init(_ state: State) { self.state = Mutex(state) }

    var current: State { state.withLock { $0 } }
    func set(_ new: State) { state.withLock { $0 = new } }

    var healthProblem: String? { problem.withLock { $0 } }
    func setHealthProblem(_ text: String?) { problem.withLock { $0 = text } }

    /// The engine to serve a request with, or the standby answer.
    func engine() throws -> FlowEngine {
        switch current {
        case .active(let engine): return engine
        case .takingOver: throw Self.standby(active: nil)
        case .standby(let active): throw Self.standby(active: active)
        }
    }

    var isActive: Bool {
        if case .active = current { return true }
        return false
    }

    /// Waits while the node takes over (claims the database, resumes flows), at most `limit`;
    /// true if it is active then. A take-over lasts moments, so a request that arrives during one
    /// is better served once it is done than sent away to come back after its `Retry-After`.
    /// Polls (a few milliseconds apart): only requests that arrive during a take-over wait.
    func awaitTakeOver(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while case .takingOver = current, ContinuousClock.now < deadline {
            do { try await Task.sleep(for: .milliseconds(5)) } catch { break }
        }
        return isActive
    }

    /// The answer of a node that does not serve now (docs/node.md, "High availability").
    static func standby(active: String?) -> NodeAPIError {
        let message = active.map { "this node is a standby; the active node is at \($0)" }
            ?? "this node is a standby and no node is active yet; try again shortly"
        return NodeAPIError(.standby, message, retryAfter: 1, active: active)
    }
}
