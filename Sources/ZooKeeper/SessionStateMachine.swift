import NIOCore

/// The sans-I/O core of a ZooKeeper client: connection attempts across the ensemble, the
/// handshake, pings and read timeouts, request/reply matching, watches, auth replay, expiry and
/// close. It is a value driven by events (connection up/down, bytes received, timer fired, caller
/// requests) that returns the actions the I/O shell must perform. It reads no clock and does no I/O.
struct SessionStateMachine {
    struct Configuration: Sendable {
        /// The ensemble, tried in this order, moving to the next server after every failure.
        var servers: [ServerAddress]
        /// The session timeout asked for; the server clamps it to its min/max (2 and 20 ticks by default).
        var sessionTimeout: Duration = .seconds(10)
        /// How long the very first connection may take before the client gives up.
        var initialConnectTimeout: Duration = .seconds(15)
        /// The pause after every server of the ensemble failed in a row.
        var reconnectDelay: Duration = .milliseconds(100)
        /// Incoming frames larger than this are refused.
        var maxFrameSize: Int = 4 << 20
        /// Resume this session instead of creating one.
        var credentials: SessionCredentials? = nil

        init(servers: [ServerAddress]) { self.servers = servers }
    }

    typealias ConnectionID = UInt64
    typealias RequestID = UInt64

    enum TimerKind: Hashable, Sendable {
        /// Bounds a connection attempt: TCP connect plus handshake.
        case connect
        /// Sends a ping (a third of the negotiated timeout).
        case ping
        /// Declares the connection dead when nothing arrived for two thirds of the timeout.
        case read
        /// The pause before the next round of connection attempts.
        case reconnect
        /// Bounds the first connection of the client.
        case initialConnect
        /// Bounds the wait for the closeSession reply.
        case closing
        /// Runs from losing an established connection until the next: once it fires the session
        /// is taken as expired (no server has heard from it for the negotiated timeout).
        case sessionLost
    }

    /// A timer instance; a fired timer whose generation is not current is stale and ignored.
    struct TimerID: Hashable, Sendable {
        var kind: TimerKind
        var generation: UInt64
    }

    enum Action: Hashable {
        case connect(ConnectionID, ServerAddress)
        case write(ConnectionID, ByteBuffer)
        case closeConnection(ConnectionID)
        /// Schedule `TimerID` after the duration, replacing any timer of the same kind.
        case scheduleTimer(TimerID, Duration)
        case cancelTimer(TimerKind)
        case complete(RequestID, Result<Response, ZooKeeperError>)
        case fireWatches([WatchID], WatchEvent)
        case failWatches([WatchID], ZooKeeperError)
        case stateChanged(ZooKeeperConnectionState)
    }

    enum Phase: Hashable {
        case idle
        /// Connecting to `servers[server]`; `handshakeSent` once TCP is up and ConnectRequest written.
        case connecting(ConnectionID, server: Int, handshakeSent: Bool)
        case connected(ConnectionID, server: Int)
        /// Every server failed in a row; waiting for the reconnect timer.
        case waitingToReconnect
        /// closeSession sent with `xid`; waiting for its reply.
        case closing(ConnectionID, xid: Int32)
        case expired
        case closed
    }

    struct Pending: Hashable {
        var id: RequestID
        var request: Request
        var watch: WatchID?
    }

    private struct InFlight {
        var xid: Int32
        /// nil once the caller cancelled: the reply is read and dropped.
        var pending: Pending?
    }

    private struct AuthEntry {
        var id: UInt64
        var scheme: String
        var auth: [UInt8]
        var waiter: RequestID?
    }

    let configuration: Configuration
    private(set) var phase: Phase = .idle
    private(set) var session: SessionCredentials?
    /// The timeout the server granted, in milliseconds.
    private(set) var negotiatedTimeoutMs: Int32?
    private(set) var lastZxid: Int64 = 0
    private(set) var serverIndex = 0
    private(set) var watches = WatchTable()
    private var everEstablished = false
    private var failedAttempts = 0
    private var nextConnectionID: ConnectionID = 1
    private var nextXid: Int32 = 1
    private var nextAuthID: UInt64 = 1
    private var timerGenerations: [TimerKind: UInt64] = [:]
    private var decoder: FrameDecoder
    private var queued = CircularBuffer<Pending>()
    private var inFlight = CircularBuffer<InFlight>()
    private var authEntries: [AuthEntry] = []
    private var authInFlight = CircularBuffer<UInt64>()
    private var closeWaiters: [RequestID] = []

    init(configuration: Configuration) {
        precondition(!configuration.servers.isEmpty, "a ZooKeeper client needs at least one server")
        self.configuration = configuration
        self.session = configuration.credentials
        self.decoder = FrameDecoder(maxFrameSize: configuration.maxFrameSize)
    }

    // MARK: - Derived values

    /// The server of the established connection, if any.
    var connectedServer: ServerAddress? {
        if case .connected(_, let server) = phase { return configuration.servers[server] }
        return nil
    }

    var requestedTimeoutMs: Int32 { Int32(clamping: configuration.sessionTimeout.milliseconds) }
    private var timeoutMs: Int64 { Int64(negotiatedTimeoutMs ?? requestedTimeoutMs) }
    var pingInterval: Duration { .milliseconds(timeoutMs / 3) }
    var readTimeout: Duration { .milliseconds(timeoutMs * 2 / 3) }
    /// As the Java client: the session timeout shared among the servers.
    var connectTimeout: Duration { .milliseconds(max(timeoutMs / Int64(configuration.servers.count), 100)) }

    var queuedCount: Int { queued.count }
    var inFlightCount: Int { inFlight.count }

    // MARK: - Events

    /// Starts the first connection attempt.
    mutating func start() -> [Action] {
        guard case .idle = phase else { return [] }
        return [schedule(.initialConnect, configuration.initialConnectTimeout)] + attempt()
    }

    /// TCP connection `id` is up: send the handshake.
    mutating func connectionEstablished(_ id: ConnectionID) -> [Action] {
        guard case .connecting(id, let server, false) = phase else { return [] }
        phase = .connecting(id, server: server, handshakeSent: true)
        let request = ConnectRequest(
            lastZxidSeen: lastZxid, timeOut: requestedTimeoutMs, sessionId: session?.id ?? 0,
            passwd: session?.password ?? [UInt8](repeating: 0, count: 16), readOnly: false)
        return [.write(id, makeFrame { request.encode(into: &$0) })]
    }

    /// TCP connect for `id` failed.
    mutating func connectionFailed(_ id: ConnectionID) -> [Action] { lost(id) }

    /// Connection `id` closed (by the peer, an error, or us).
    mutating func connectionClosed(_ id: ConnectionID) -> [Action] { lost(id) }

    mutating func bytesReceived(_ id: ConnectionID, _ bytes: ByteBuffer) -> [Action] {
        guard currentConnection == id, isReading else { return [] }
        decoder.append(bytes)
        var actions: [Action] = []
        if case .connected = phase { actions.append(schedule(.read, readTimeout)) }
        while currentConnection == id {
            let frame: ByteBuffer?
            do { frame = try decoder.next() } catch { return actions + lost(id) }
            guard var frame else { break }
            actions += handleFrame(id, &frame)
        }
        return actions
    }

    mutating func timerFired(_ timer: TimerID) -> [Action] {
        guard timerGenerations[timer.kind] == timer.generation else { return [] }
        switch (timer.kind, phase) {
        case (.connect, .connecting(let id, _, _)):
            return lost(id)
        case (.ping, .connected(let id, _)):
            let ping = makeFrame { RequestHeader(xid: SpecialXid.ping, op: .ping).encode(into: &$0) }
            return [.write(id, ping), schedule(.ping, pingInterval)]
        case (.read, .connected(let id, _)):
            return lost(id)
        case (.reconnect, .waitingToReconnect):
            return attempt()
        case (.initialConnect, _):
            guard !everEstablished, !isTerminal else { return [] }
            return finishClose(error: .connectionLoss)
        case (.closing, .closing):
            return finishClose(error: .closed)
        case (.sessionLost, .connecting), (.sessionLost, .waitingToReconnect):
            // As Curator's "lost": the servers expire a session they have not heard from for its
            // timeout, and an ensemble that lost its data refuses the session's reconnection for
            // ever ("it has seen zxid ... client must try another server"); a new session starts
            // from that ensemble's state. Without this a pair on a re-created ensemble stayed
            // without a master until both processes restarted (found from outside).
            return expire(currentConnection)
        default:
            return []
        }
    }

    /// A caller's request. `watch` is the registration to record if the request leaves a watch.
    mutating func submit(_ request: Request, id: RequestID, watch: WatchID? = nil) -> [Action] {
        if let error = terminalError { return [.complete(id, .failure(error))] }
        let sequential: Bool = if case .create(_, _, _, let mode) = request { mode == .persistentSequential || mode == .ephemeralSequential } else { false }
        let valid: Bool
        if case .multi(let ops) = request {
            valid = ops.allSatisfy { op in
                if case .create(let path, _, _, let mode) = op {
                    return isValidPath(path, sequential: mode == .persistentSequential || mode == .ephemeralSequential)
                }
                return isValidPath(op.path)
            }
        } else {
            valid = request.paths.allSatisfy { isValidPath($0, sequential: sequential) }
        }
        guard valid else { return [.complete(id, .failure(.badArguments))] }
        let pending = Pending(id: id, request: request, watch: request.watchRegistration == nil ? nil : watch)
        if case .connected(let connection, _) = phase {
            return [send(pending, on: connection)]
        }
        queued.append(pending)
        return []
    }

    /// Adds credentials to the session; they are sent again after every reconnect.
    mutating func addAuth(scheme: String, auth: [UInt8], id: RequestID) -> [Action] {
        if let error = terminalError { return [.complete(id, .failure(error))] }
        let entry = AuthEntry(id: nextAuthID, scheme: scheme, auth: auth, waiter: id)
        nextAuthID += 1
        authEntries.append(entry)
        if case .connected(let connection, _) = phase {
            authInFlight.append(entry.id)
            return [.write(connection, authFrame(entry))]
        }
        return []
    }

    /// The caller gave up on `id`: forget it (a reply still to come is dropped).
    mutating func cancel(_ id: RequestID) {
        if let index = queued.firstIndex(where: { $0.id == id }) { queued.remove(at: index) }
        for index in inFlight.indices where inFlight[index].pending?.id == id { inFlight[index].pending = nil }
        for index in authEntries.indices where authEntries[index].waiter == id { authEntries[index].waiter = nil }
        closeWaiters.removeAll { $0 == id }
    }

    /// Closes the session (closeSession when connected) and completes `id` once closed.
    mutating func close(id: RequestID) -> [Action] {
        switch phase {
        case .closed, .expired:
            return [.complete(id, .success(.none))]
        case .closing:
            closeWaiters.append(id)
            return []
        case .connected(let connection, _):
            closeWaiters.append(id)
            let xid = takeXid()
            phase = .closing(connection, xid: xid)
            let frame = makeFrame { RequestHeader(xid: xid, op: .closeSession).encode(into: &$0) }
            return [cancel(.ping), cancel(.read), .write(connection, frame), schedule(.closing, readTimeout)]
        case .idle, .connecting, .waitingToReconnect:
            closeWaiters.append(id)
            return finishClose(error: .closed)
        }
    }

    // MARK: - Internals

    private var isTerminal: Bool {
        switch phase {
        case .expired, .closed: true
        default: false
        }
    }

    private var terminalError: ZooKeeperError? {
        switch phase {
        case .expired: .sessionExpired
        case .closed, .closing: .closed
        default: nil
        }
    }

    private var currentConnection: ConnectionID? {
        switch phase {
        case .connecting(let id, _, _), .connected(let id, _), .closing(let id, _): id
        default: nil
        }
    }

    private var isReading: Bool {
        switch phase {
        case .connecting(_, _, let handshakeSent): handshakeSent
        case .connected, .closing: true
        default: false
        }
    }

    private mutating func takeXid() -> Int32 {
        let xid = nextXid
        nextXid = nextXid == .max ? 1 : nextXid + 1
        return xid
    }

    private mutating func schedule(_ kind: TimerKind, _ delay: Duration) -> Action {
        let generation = (timerGenerations[kind] ?? 0) + 1
        timerGenerations[kind] = generation
        return .scheduleTimer(TimerID(kind: kind, generation: generation), delay)
    }

    private mutating func cancel(_ kind: TimerKind) -> Action {
        timerGenerations[kind, default: 0] += 1
        return .cancelTimer(kind)
    }

    private mutating func attempt() -> [Action] {
        let id = nextConnectionID
        nextConnectionID += 1
        phase = .connecting(id, server: serverIndex, handshakeSent: false)
        decoder = FrameDecoder(maxFrameSize: configuration.maxFrameSize)
        return [schedule(.connect, connectTimeout), .connect(id, configuration.servers[serverIndex])]
    }

    /// Connection `id` is gone (closed, failed, timed out or unparseable).
    private mutating func lost(_ id: ConnectionID) -> [Action] {
        guard currentConnection == id else { return [] }
        var actions: [Action] = [.closeConnection(id), cancel(.connect), cancel(.ping), cancel(.read)]
        switch phase {
        case .closing:
            return actions + finishClose(error: .closed)
        case .connected:
            actions.append(.stateChanged(.suspended))
            actions.append(schedule(.sessionLost, .milliseconds(Int64(negotiatedTimeoutMs ?? requestedTimeoutMs))))
            for entry in inFlight {
                if let pending = entry.pending { actions.append(.complete(pending.id, .failure(.connectionLoss))) }
            }
            inFlight.removeAll()
            authInFlight.removeAll()
        default:
            break
        }
        failedAttempts += 1
        serverIndex = (serverIndex + 1) % configuration.servers.count
        if failedAttempts % configuration.servers.count == 0 {
            phase = .waitingToReconnect
            actions.append(schedule(.reconnect, configuration.reconnectDelay))
            return actions
        }
        return actions + attempt()
    }

    private mutating func handleFrame(_ id: ConnectionID, _ frame: inout ByteBuffer) -> [Action] {
        if case .connecting = phase {
            guard let response = try? ConnectResponse(from: &frame) else { return lost(id) }
            return response.timeOut <= 0 ? expire(id) : established(id, response)
        }
        guard let header = try? ReplyHeader(from: &frame) else { return lost(id) }
        switch header.xid {
        case SpecialXid.notification:
            guard let event = try? WatcherEvent(from: &frame) else { return lost(id) }
            let type = WatchEventType(code: event.type)
            let fired = watches.trigger(type, path: event.path)
            return fired.isEmpty ? [] : [.fireWatches(fired, WatchEvent(type: type, path: event.path))]
        case SpecialXid.ping, SpecialXid.setWatches:
            return []
        case SpecialXid.auth:
            guard let entryID = authInFlight.popFirst(),
                  let index = authEntries.firstIndex(where: { $0.id == entryID }) else { return [] }
            let waiter = authEntries[index].waiter
            authEntries[index].waiter = nil
            if let error = ZooKeeperError(code: header.err) {
                authEntries.remove(at: index)
                return waiter.map { [.complete($0, .failure(error))] } ?? []
            }
            return waiter.map { [.complete($0, .success(.none))] } ?? []
        default:
            break
        }
        if case .closing(_, let closeXid) = phase, header.xid == closeXid {
            return finishClose(error: .closed)
        }
        guard let first = inFlight.first, first.xid == header.xid else { return lost(id) }
        inFlight.removeFirst()
        if header.zxid > lastZxid { lastZxid = header.zxid }
        guard let pending = first.pending else { return [] }
        return [.complete(pending.id, result(of: pending, header: header, body: &frame))]
    }

    private mutating func result(of pending: Pending, header: ReplyHeader, body: inout ByteBuffer) -> Result<Response, ZooKeeperError> {
        let registration = pending.request.watchRegistration
        if case .exists = pending.request, header.err == ZooKeeperError.noNode.code {
            if let watch = pending.watch, let registration { watches.register(watch, kind: .exist, path: registration.path) }
            return .success(.noStat)
        }
        if case .multi = pending.request, body.readableBytes > 0,
           let results = try? Request.decodeMultiResults(from: &body) {
            if let index = results.firstIndex(where: { if case .error(.some) = $0 { true } else { false } }),
               case .error(.some(let error)) = results[index] {
                return .failure(.multiFailed(index: index, error: error, results: results))
            }
            if let error = ZooKeeperError(code: header.err) { return .failure(error) }
            return .success(.multi(results))
        }
        if let error = ZooKeeperError(code: header.err) { return .failure(error) }
        do {
            let response = try pending.request.decodeResponse(from: &body)
            if let watch = pending.watch, let registration { watches.register(watch, kind: registration.kind, path: registration.path) }
            return .success(response)
        } catch {
            return .failure(.protocolError("unreadable reply to \(pending.request.opCode): \(error)"))
        }
    }

    private mutating func established(_ id: ConnectionID, _ response: ConnectResponse) -> [Action] {
        guard case .connecting(_, let server, _) = phase else { return [] }
        let isReconnect = everEstablished
        everEstablished = true
        session = SessionCredentials(id: response.sessionId, password: response.passwd)
        negotiatedTimeoutMs = response.timeOut
        phase = .connected(id, server: server)
        failedAttempts = 0
        var actions: [Action] = [
            cancel(.connect), cancel(.initialConnect), cancel(.sessionLost),
            schedule(.ping, pingInterval), schedule(.read, readTimeout),
        ]
        for entry in authEntries {
            authInFlight.append(entry.id)
            actions.append(.write(id, authFrame(entry)))
        }
        for batch in watches.setWatches(relativeZxid: lastZxid) {
            actions.append(.write(id, makeFrame {
                RequestHeader(xid: SpecialXid.setWatches, op: .setWatches).encode(into: &$0)
                batch.encode(into: &$0)
            }))
        }
        while let pending = queued.popFirst() { actions.append(send(pending, on: id)) }
        actions.append(.stateChanged(isReconnect ? .reconnected : .connected))
        return actions
    }

    /// The session is gone: the server said so on connection `id`, or none heard from it for its timeout.
    private mutating func expire(_ id: ConnectionID?) -> [Action] {
        phase = .expired
        var actions: [Action] = (id.map { [.closeConnection($0)] } ?? []) + [.stateChanged(.expired)] + cancelAllTimers()
        actions += failAll(.sessionExpired)
        return actions
    }

    private mutating func finishClose(error: ZooKeeperError) -> [Action] {
        var actions: [Action] = []
        if let connection = currentConnection { actions.append(.closeConnection(connection)) }
        phase = .closed
        actions.append(.stateChanged(.closed))
        actions += cancelAllTimers()
        actions += failAll(error)
        for waiter in closeWaiters { actions.append(.complete(waiter, .success(.none))) }
        closeWaiters.removeAll()
        return actions
    }

    private mutating func cancelAllTimers() -> [Action] {
        [TimerKind.connect, .ping, .read, .reconnect, .initialConnect, .closing, .sessionLost].map { cancel($0) }
    }

    private mutating func failAll(_ error: ZooKeeperError) -> [Action] {
        var actions: [Action] = []
        for entry in inFlight { if let pending = entry.pending { actions.append(.complete(pending.id, .failure(error))) } }
        for pending in queued { actions.append(.complete(pending.id, .failure(error))) }
        for entry in authEntries { if let waiter = entry.waiter { actions.append(.complete(waiter, .failure(error))) } }
        inFlight.removeAll(); queued.removeAll(); authInFlight.removeAll(); authEntries.removeAll()
        let dropped = watches.removeAll()
        if !dropped.isEmpty { actions.append(.failWatches(dropped, error)) }
        return actions
    }

    private mutating func send(_ pending: Pending, on connection: ConnectionID) -> Action {
        let xid = takeXid()
        inFlight.append(InFlight(xid: xid, pending: pending))
        return .write(connection, makeFrame {
            RequestHeader(xid: xid, op: pending.request.opCode).encode(into: &$0)
            pending.request.encodeBody(into: &$0)
        })
    }

    private func authFrame(_ entry: AuthEntry) -> ByteBuffer {
        makeFrame {
            RequestHeader(xid: SpecialXid.auth, op: .auth).encode(into: &$0)
            AuthPacket(scheme: entry.scheme, auth: entry.auth).encode(into: &$0)
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
