import Coordination
import Logging
import Synchronization
import ZooKeeper

/// One ZooKeeper session for the elections and administrations of a process's partitions (a
/// hot-hot node's partitions, its outbox and its balancer; `election run --partitions`).
///
/// With a session each, a process of 16 partitions held 18 sessions, and ZooKeeper's
/// `maxClientCnxns` (60 a client address by default) let at most three such processes run on
/// one machine; every session also pings and expires on its own. The partitions of a process
/// live and die together, so one session serves them all: its expiry ends every election on it
/// (each stands again on the next session), and an election that stops deletes its own node.
/// For administrations it also spares a session a call: a balancer reading 16 partitions every
/// half second created and closed 32 sessions a second, each a write the ensemble logs.
///
/// Opened at first use, opened again once ZooKeeper has expired it; each election's nodes are
/// made sure of once a session. Its owner closes it once the elections on it have stopped.
public final class ZooKeeperSharedSession: Sendable {
    private struct State {
        var opening: Task<ZooKeeperClient, any Error>?
        var ensured: Set<String> = []
        var closed = false
    }
    private let state = Mutex(State())
    private let initialConnectTimeout: Duration?

    /// `initialConnectTimeout`: how long opening a session may take; nil: the session time-out's,
    /// at least 2 s.
    public init(initialConnectTimeout: Duration? = nil) {
        self.initialConnectTimeout = initialConnectTimeout
    }

    /// The session's client, opened with `configuration`'s ensemble, session time-out and
    /// credentials (every partition's are the same), with the election's nodes made sure of.
    /// Throws `ZooKeeperError.closed` once the session was closed.
    func client(_ configuration: ZooKeeperElectionConfiguration, logger: Logger) async throws -> ZooKeeperClient {
        let opening = try state.withLock { state in
            guard !state.closed else { throw ZooKeeperError.closed }
            if let opening = state.opening { return opening }
            let timeout = initialConnectTimeout ?? max(configuration.sessionTimeout, .seconds(2))
            let opening = Task { try await ZooKeeperPaths.connect(configuration, initialConnectTimeout: timeout, logger: logger) }
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
            await client.close()
            return try await self.client(configuration, logger: logger)
        }
        if !state.withLock({ $0.ensured.contains(configuration.base) }) {
            try await ZooKeeperPaths.ensure(client, configuration, logger: logger)
            state.withLock { _ = $0.ensured.insert(configuration.base) }
        }
        return client
    }

    /// Closes the session: ZooKeeper deletes every node the elections on it still had.
    public func close() async {
        let opening = state.withLock { state in
            defer { state = State(closed: true) }
            return state.opening
        }
        if let client = try? await opening?.value { await client.close() }
    }

    /// Drops a session that failed to open or has ended, unless another has replaced it already.
    private func forget(_ opening: Task<ZooKeeperClient, any Error>) {
        state.withLock { state in
            if state.opening == opening { (state.opening, state.ensured) = (nil, []) }
        }
    }
}
