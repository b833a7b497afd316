import Coordination
import Logging
import Synchronization
import ZooKeeper

/// One ZooKeeper session for the administrations of a process's partition elections (a hot-hot
/// node's balancer, `election run --partitions`). An operator's command opens a session per call,
/// and a balancer reading 16 partitions every half second so created and closed 32 sessions a
/// second, each a write the ensemble logs, besides making sure of each election's nodes each time
/// (failed creates are logged writes too). Opened at first use, opened again once ZooKeeper has
/// expired or closed it; each election's nodes are made sure of once a session; its owner closes it.
public final class ZooKeeperAdministrationSession: Sendable {
    private struct State {
        var opening: Task<ZooKeeperClient, any Error>?
        var ensured: Set<String> = []
    }
    private let state = Mutex(State())

    public init() {}

    /// Runs `body` on the session, opened with `configuration`'s ensemble and credentials (every
    /// partition's are the same), with the election's nodes made sure of.
    func use<T: Sendable>(_ configuration: ZooKeeperElectionConfiguration, logger: Logger,
                          _ body: @Sendable (ZooKeeperClient) async throws -> T) async throws -> T {
        let opening = state.withLock { state in
            if let opening = state.opening { return opening }
            let opening = Task { try await ZooKeeperPaths.connect(configuration, initialConnectTimeout: .seconds(5), logger: logger) }
            state.opening = opening
            state.ensured = []
            return opening
        }
        let client: ZooKeeperClient
        do {
            client = try await opening.value
        } catch {
            forget(opening)
            throw error
        }
        guard client.state != .expired, client.state != .closed else {
            forget(opening)
            return try await use(configuration, logger: logger, body)
        }
        if !state.withLock({ $0.ensured.contains(configuration.base) }) {
            try await ZooKeeperPaths.ensure(client, configuration, logger: logger)
            state.withLock { _ = $0.ensured.insert(configuration.base) }
        }
        return try await body(client)
    }

    /// Closes the session; a later use opens another.
    public func close() async {
        let opening = state.withLock { state in
            defer { state = State() }
            return state.opening
        }
        if let client = try? await opening?.value { await client.close() }
    }

    /// Drops a session that failed to open or has ended, unless another has replaced it already.
    private func forget(_ opening: Task<ZooKeeperClient, any Error>) {
        state.withLock { state in
            if state.opening == opening { state = State() }
        }
    }
}
