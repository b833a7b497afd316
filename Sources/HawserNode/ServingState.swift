import Flows
import HawserWire
import Synchronization

/// What an API serves with now (`Work`: the node's flow engine, the notary's parts). A single
/// process is `active` with its one `Work` for its whole life; a hot-warm process switches
/// between `standby` and the work of its current term as `ShardService` wins and loses the shard.
/// Every route reaches the work through `work(or:)`, so a request that begins after the process
/// stopped serving gets the standby answer (and one under way then gets it from `StandbyGate`).
final class ServingState<Work: Sendable>: Sendable {
    enum State: Sendable {
        /// Owning the shard: requests go to this work.
        case active(Work)
        /// Taking the shard over (claiming it, resuming its work): not serving yet.
        case takingOver(String)
        /// Another process owns the shard (or none does); `active`: its first advertised URL, if known.
        case standby(active: String?)
    }

    private let state: Mutex<State>
    /// The last health problem the process found (its database unreachable), for `/health/ready`.
    private let problem = Mutex<String?>(nil)
    /// Called after every change (a hot-hot node's partitions tell the node's state, `FlowEngines`).
    private let changed: @Sendable () -> Void
    /// Whether the election still confirms this process's leadership (`Election.leadsNow`), for a
    /// process that owns its shard through one.
    private let leads = Mutex<(@Sendable () -> Bool)?>(nil)

    init(_ state: State, changed: @escaping @Sendable () -> Void = {}) {
        self.state = Mutex(state)
        self.changed = changed
    }

    /// Serving only while `leads` says so: a process paused past its lease, run again, otherwise
    /// served (and answered ready) for the moments before its election stepped it down.
    func confirmed(by leads: @escaping @Sendable () -> Bool) { self.leads.withLock { $0 = leads } }

    /// The state, `standby` once the leadership under an `active` one is no longer valid.
    var current: State {
        let current = state.withLock { $0 }
        if case .active = current, let leads = leads.withLock({ $0 }), !leads() { return .standby(active: nil) }
        return current
    }
    func set(_ new: State) {
        state.withLock { $0 = new }
        changed()
    }

    var healthProblem: String? { problem.withLock { $0 } }
    func setHealthProblem(_ text: String?) {
        problem.withLock { $0 = text }
        changed()
    }

    /// The work to serve a request with, or the API's standby answer.
    func work<Failure: StandbyAnswer>(or _: Failure.Type) throws(Failure) -> Work {
        let state = current
        if case .active(let work) = state { return work }
        throw Self.standbyAnswer(state, Failure.self)
    }

    /// The API's standby answer, naming the active process if this one knows it (not while it
    /// still serves or takes over: a process whose write was just refused may not have heard yet).
    func standbyAnswer<Failure: StandbyAnswer>(_: Failure.Type) -> Failure { Self.standbyAnswer(current, Failure.self) }

    private static func standbyAnswer<Failure: StandbyAnswer>(_ state: State, _: Failure.Type) -> Failure {
        if case .standby(let active) = state { return Failure.standby(active: active) }
        return Failure.standby(active: nil)
    }

    var isActive: Bool {
        if case .active = current { return true }
        return false
    }

    /// Waits while the process takes over (claims the database, resumes its work), at most `limit`;
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
}

extension ServingState where Work == FlowEngine {
    /// The flow engine serving now, or the node API's standby answer.
    func engine() throws(NodeAPIError) -> FlowEngine { try work(or: NodeAPIError.self) }
}

/// An API error type with the answer of a process that does not serve now (docs/node.md, "High
/// availability"): 503 `standby`, `Retry-After: 1`, and `active`, the active process's first
/// advertised URL, when one is active.
protocol StandbyAnswer: Error {
    static func standby(active: String?) -> Self
}

extension NodeAPIError: StandbyAnswer {
    static func standby(active: String?) -> NodeAPIError {
        let message = active.map { "this node is a standby; the active node is at \($0)" }
            ?? "this node is a standby and knows of no active node yet (a take-over may be under way); try again shortly"
        return NodeAPIError(.standby, message, retryAfter: 1, active: active)
    }
}

extension APIError: StandbyAnswer {
    /// The notary's standby answer; its response adds `Retry-After: 1` (`WireFormat`).
    static func standby(active: String?) -> APIError {
        let message = active.map { "this notary is a standby; the active notary is at \($0)" }
            ?? "this notary is a standby and no notary is active yet; try again shortly"
        return APIError(.standby, message, active: active)
    }
}
