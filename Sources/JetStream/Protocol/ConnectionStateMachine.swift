/// Something that happened to the connection, delivered through `NATSClient.events()`.
public enum ConnectionEvent: Sendable, Hashable {
    case connected(ServerAddress)
    case disconnected(NATSError?)
    case reconnected(ServerAddress)
    case discoveredServers([ServerAddress])
    case lameDuckMode(ServerAddress)
    /// A non-fatal `-ERR` from the server (for example a permissions violation).
    case serverError(String)
    /// A subscription's buffer was full and messages were dropped; `dropped` is its running total.
    case slowConsumer(subject: String, subscriptionID: UInt64, dropped: UInt64)
    case closed
}

/// The sans-I/O connection life cycle: connecting, the `INFO`/`CONNECT`/`PING`/`PONG` handshake,
/// keep-alive pings, reconnecting with back-off over a server pool, and buffering writes while
/// disconnected. The I/O shell feeds it events and carries out the actions it returns.
struct ConnectionStateMachine {
    struct Configuration: Sendable {
        var reconnect = ReconnectPolicy()
        var maxPingsOutstanding = 2
        var reconnectBufferSize = 8 * 1024 * 1024
        var randomizeServers = true
        var ignoreDiscoveredServers = false
        var retryOnFailedInitialConnect = false
        /// The client has a TLS configuration and wants TLS with every server.
        var tlsConfigured = false
    }

    enum State: Hashable {
        case idle
        /// The TCP connection is being opened.
        case connecting(ServerAddress)
        /// TCP is up; waiting for the server's `INFO`.
        case awaitingInfo(ServerAddress)
        /// `CONNECT` and `PING` were sent; waiting for `PONG` (or `-ERR`).
        case awaitingPong(ServerAddress, ServerInfo)
        case connected(ServerAddress, ServerInfo)
        /// Waiting for the reconnect timer.
        case waiting
        case closed
    }

    enum Action: Hashable {
        case connect(ServerAddress)
        case upgradeToTLS(ServerAddress)
        /// Send `CONNECT` (with credentials for this server) followed by `PING`.
        case sendConnect(ServerAddress, ServerInfo)
        /// The handshake is done: resubscribe, write the buffered bytes, start keep-alive pings.
        case handshakeCompleted(ServerAddress, ServerInfo, isReconnect: Bool)
        case closeChannel(NATSError)
        case scheduleReconnect(Duration)
        case sendPing
        case flushSucceeded(UInt64)
        case failFlushes([UInt64], NATSError)
        case emit(ConnectionEvent)
        /// The first connect failed: the client is closed.
        case failConnect(NATSError)
        /// The client is closed; fail everything still waiting. `nil` means closed by request.
        case shutdown(NATSError?)
    }

    /// What to do with bytes the user wants to send.
    enum OutboundDecision: Hashable {
        case write
        case buffer
        case reject(NATSError)
    }

    private enum PongWaiter: Hashable {
        case keepalive
        case flush(UInt64)
    }

    let configuration: Configuration
    private(set) var state: State = .idle
    private(set) var pool: ServerPool
    private var rng: SplitMix64
    private(set) var everConnected = false
    private(set) var consecutiveFailures = 0
    private(set) var lastError: NATSError?
    /// The last `max_payload` a server announced.
    private(set) var maxPayload = 1_048_576
    private(set) var bufferedBytes = 0
    private var pingsOutstanding = 0
    private var pongQueue: [PongWaiter] = []
    private var bufferedFlushes: [UInt64] = []

    init(servers: [ServerAddress], configuration: Configuration, seed: UInt64) {
        self.configuration = configuration
        var rng = SplitMix64(seed: seed)
        self.pool = ServerPool(servers: servers, randomize: configuration.randomizeServers, using: &rng)
        self.rng = rng
    }

    var connectedServer: ServerAddress? {
        if case .connected(let s, _) = state { return s }
        return nil
    }

    var serverInfo: ServerInfo? {
        if case .connected(_, let i) = state { return i }
        return nil
    }

    // MARK: - Events

    mutating func start() -> [Action] {
        guard case .idle = state else { return [] }
        guard !pool.isEmpty else {
            state = .closed
            return [.failConnect(.connectionFailed("no servers configured"))]
        }
        return attemptNext()
    }

    mutating func socketConnected() -> [Action] {
        if case .connecting(let s) = state { state = .awaitingInfo(s) }
        return []
    }

    /// The TCP connect failed, or an established channel closed.
    mutating func channelClosed(reason: String?) -> [Action] {
        switch state {
        case .connecting(let s), .awaitingInfo(let s), .awaitingPong(let s, _):
            if lastError == nil { lastError = .connectionFailed(reason ?? "connection closed by \(s)") }
            return attemptFailed(s)
        case .connected:
            return disconnected()
        case .idle, .waiting, .closed:
            return []
        }
    }

    mutating func receivedInfo(_ info: ServerInfo) -> [Action] {
        switch state {
        case .awaitingInfo(let s):
            maxPayload = info.maxPayload
            let discovered = discover(info, from: s)
            let wantTLS = s.requiresTLS || configuration.tlsConfigured
            if wantTLS && !(info.tlsRequired || info.tlsAvailable) {
                lastError = .tlsMismatch("\(s) does not offer TLS")
                return [.closeChannel(lastError!)]
            }
            state = .awaitingPong(s, info)
            var actions: [Action] = []
            if wantTLS || info.tlsRequired { actions.append(.upgradeToTLS(s)) }
            actions.append(.sendConnect(s, info))
            if !discovered.isEmpty && everConnected { actions.append(.emit(.discoveredServers(discovered))) }
            return actions
        case .awaitingPong(let s, _):
            maxPayload = info.maxPayload
            state = .awaitingPong(s, info)
            discover(info, from: s)
            return []
        case .connected(let s, _):
            maxPayload = info.maxPayload
            state = .connected(s, info)
            var actions: [Action] = []
            let discovered = discover(info, from: s)
            if !discovered.isEmpty { actions.append(.emit(.discoveredServers(discovered))) }
            if info.lameDuckMode { actions.append(.emit(.lameDuckMode(s))) }
            return actions
        case .idle, .connecting, .waiting, .closed:
            return []
        }
    }

    mutating func receivedPong() -> [Action] {
        switch state {
        case .awaitingPong(let s, let info):
            state = .connected(s, info)
            pool.markConnected(s)
            consecutiveFailures = 0
            lastError = nil
            let isReconnect = everConnected
            everConnected = true
            pongQueue = bufferedFlushes.map { .flush($0) }
            bufferedFlushes = []
            bufferedBytes = 0
            pingsOutstanding = 0
            return [
                .handshakeCompleted(s, info, isReconnect: isReconnect),
                .emit(isReconnect ? .reconnected(s) : .connected(s)),
            ]
        case .connected:
            pingsOutstanding = 0
            guard !pongQueue.isEmpty else { return [] }
            switch pongQueue.removeFirst() {
            case .keepalive: return []
            case .flush(let id): return [.flushSucceeded(id)]
            }
        default:
            return []
        }
    }

    mutating func receivedError(_ message: String) -> [Action] {
        let lower = message.lowercased()
        let isAuth = lower.contains("authorization") || lower.contains("authentication")
        let error: NATSError = isAuth ? .authorizationViolation(message) : .serverError(message)
        switch state {
        case .awaitingInfo, .awaitingPong:
            lastError = error
            return [.closeChannel(error)]
        case .connected:
            let fatal = [
                "stale connection", "slow consumer", "maximum connections", "parser error",
                "unknown protocol", "maximum payload", "tls required", "authentication",
            ].contains { lower.contains($0) }
            if fatal || lower.contains("authorization violation") {
                lastError = error
                return [.emit(.serverError(message)), .closeChannel(error)]
            }
            return [.emit(.serverError(message))]
        default:
            return []
        }
    }

    mutating func protocolError(_ description: String) -> [Action] {
        switch state {
        case .awaitingInfo, .awaitingPong, .connected:
            lastError = .protocolError(description)
            return [.closeChannel(lastError!)]
        default:
            return []
        }
    }

    mutating func handshakeTimedOut() -> [Action] {
        switch state {
        case .awaitingInfo(let s), .awaitingPong(let s, _):
            lastError = .connectionFailed("handshake with \(s) timed out")
            return [.closeChannel(lastError!)]
        default:
            return []
        }
    }

    mutating func reconnectTimerFired() -> [Action] {
        guard case .waiting = state else { return [] }
        return attemptNext()
    }

    mutating func pingTimerFired() -> [Action] {
        guard case .connected = state else { return [] }
        if pingsOutstanding >= configuration.maxPingsOutstanding {
            lastError = .staleConnection
            return [.closeChannel(.staleConnection)]
        }
        pingsOutstanding += 1
        pongQueue.append(.keepalive)
        return [.sendPing]
    }

    /// The user closes the client.
    mutating func close() -> [Action] {
        if case .closed = state { return [] }
        state = .closed
        let flushes = pongQueue.compactMap { if case .flush(let id) = $0 { id } else { nil } } + bufferedFlushes
        pongQueue = []
        bufferedFlushes = []
        bufferedBytes = 0
        var actions: [Action] = []
        if !flushes.isEmpty { actions.append(.failFlushes(flushes, .connectionClosed)) }
        actions.append(.shutdown(nil))
        return actions
    }

    // MARK: - Outbound

    /// Decides whether `bytes` go to the socket, into the reconnect buffer, or are refused.
    mutating func outbound(bytes: Int) -> OutboundDecision {
        switch state {
        case .connected:
            return .write
        case .idle, .closed:
            return .reject(.connectionClosed)
        case .connecting, .awaitingInfo, .awaitingPong, .waiting:
            if bufferedBytes + bytes > configuration.reconnectBufferSize { return .reject(.reconnectBufferExceeded) }
            bufferedBytes += bytes
            return .buffer
        }
    }

    /// A flush (`PING`) with an id the shell maps to a waiter.
    mutating func flush(id: UInt64) -> OutboundDecision {
        if case .connected = state {
            pongQueue.append(.flush(id))
            return .write
        }
        let decision = outbound(bytes: 6)
        if case .buffer = decision { bufferedFlushes.append(id) }
        return decision
    }

    // MARK: - Helpers

    private mutating func attemptNext() -> [Action] {
        guard let s = pool.next() else {
            state = .closed
            return [.shutdown(.connectionFailed("no servers"))]
        }
        state = .connecting(s)
        return [.connect(s)]
    }

    private mutating func attemptFailed(_ s: ServerAddress) -> [Action] {
        pool.markFailed(s)
        consecutiveFailures += 1
        let error = lastError ?? .connectionFailed("could not connect to \(s)")
        if !everConnected && !configuration.retryOnFailedInitialConnect {
            if consecutiveFailures >= pool.count {
                state = .closed
                return [.failConnect(error)]
            }
            lastError = nil
            return attemptNext()
        }
        if let max = configuration.reconnect.maxAttempts, consecutiveFailures >= max {
            state = .closed
            return everConnected ? [.shutdown(error)] : [.failConnect(error)]
        }
        lastError = nil
        state = .waiting
        let delay = configuration.reconnect.delay(
            afterFailures: consecutiveFailures, servers: pool.count, random: rng.unit())
        return [.scheduleReconnect(delay)]
    }

    private mutating func disconnected() -> [Action] {
        let failedFlushes = pongQueue.compactMap { if case .flush(let id) = $0 { id } else { nil } }
        pongQueue = []
        pingsOutstanding = 0
        let cause = lastError
        lastError = nil
        var actions: [Action] = []
        if !failedFlushes.isEmpty { actions.append(.failFlushes(failedFlushes, .connectionClosed)) }
        actions.append(.emit(.disconnected(cause)))
        guard configuration.reconnect.enabled else {
            state = .closed
            actions.append(.shutdown(cause ?? .connectionClosed))
            return actions
        }
        consecutiveFailures = 0
        return actions + attemptNext()
    }

    @discardableResult
    private mutating func discover(_ info: ServerInfo, from s: ServerAddress) -> [ServerAddress] {
        guard !configuration.ignoreDiscoveredServers, !info.connectURLs.isEmpty else { return [] }
        return pool.addDiscovered(
            info.connectURLs, template: s, randomize: configuration.randomizeServers, using: &rng)
    }
}
