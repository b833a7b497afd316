import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// The I/O shell around ``ConnectionStateMachine``: it owns the channel, the subscription table,
/// pending requests and flushes, timers, and carries out the state machine's actions.
///
/// Every stored property is confined to `eventLoop`; every method must be called on it (the public
/// ``NATSClient`` hops there). That confinement is what makes the `@unchecked Sendable` sound.
final class ConnectionCore: @unchecked Sendable {
    struct SubscriptionRecord {
        var subject: String
        var queue: String?
        var messages: MessageQueue
        var isSlow = false
    }

    struct RequestRecord {
        var promise: EventLoopPromise<NATSMessage>
        var timeout: Scheduled<Void>?
    }

    let eventLoop: any EventLoop
    let options: NATSOptions
    let logger: Logger
    /// `_INBOX.<random>.`: the prefix of every reply subject of this client's requests.
    let responsePrefix: String

    private var machine: ConnectionStateMachine
    private let tlsContext: NIOSSLContext?
    private var defaultTLSContext: NIOSSLContext?
    private var channel: (any Channel)?
    private var generation: UInt64 = 0
    private var lastChannelError: String?
    /// The last failure to connect that was logged: each new one is logged once, at warning,
    /// since the client retries unseen otherwise (an unreachable server at start-up, for ever).
    private var reportedConnectProblem: String?
    private var pending = ByteBuffer()
    private var flushScheduled = false

    private var subscriptions: [UInt64: SubscriptionRecord] = [:]
    private var nextSID: UInt64 = 1
    private var responseSID: UInt64?
    private var requests: [String: RequestRecord] = [:]
    private var flushWaiters: [UInt64: EventLoopPromise<Void>] = [:]
    private var nextFlushID: UInt64 = 1

    private var connectPromise: EventLoopPromise<Void>?
    private var reconnectTask: Scheduled<Void>?
    private var handshakeTimer: Scheduled<Void>?
    private var pingTask: RepeatedTask?
    private var listeners: [UInt64: AsyncStream<ConnectionEvent>.Continuation] = [:]
    private var nextListenerID: UInt64 = 0
    let closedPromise: EventLoopPromise<Void>

    init(options: NATSOptions, servers: [ServerAddress], eventLoop: any EventLoop) throws {
        self.eventLoop = eventLoop
        self.options = options
        self.logger = options.logger
        var seedSource = SystemRandomNumberGenerator()
        let seed = options.randomSeed ?? seedSource.next()
        var configuration = ConnectionStateMachine.Configuration()
        configuration.reconnect = options.reconnect
        configuration.maxPingsOutstanding = options.maxPingsOutstanding
        configuration.reconnectBufferSize = options.reconnectBufferSize
        configuration.randomizeServers = options.randomizeServers
        configuration.ignoreDiscoveredServers = options.ignoreDiscoveredServers
        configuration.retryOnFailedInitialConnect = options.retryOnFailedInitialConnect
        configuration.tlsConfigured = options.tls != nil
        self.machine = ConnectionStateMachine(servers: servers, configuration: configuration, seed: seed)
        self.tlsContext = try options.tls.map { try NIOSSLContext(configuration: $0) }
        self.responsePrefix = "\(options.inboxPrefix).\(Nuid.next())."
        self.closedPromise = eventLoop.makePromise(of: Void.self)
    }

    // MARK: - Queries

    var connectedServer: ServerAddress? { machine.connectedServer }
    var serverInfo: ServerInfo? { machine.serverInfo }
    var maxPayload: Int { machine.maxPayload }
    var knownServers: [ServerAddress] { machine.pool.entries.map(\.address) }
    var isClosed: Bool { machine.state == .closed }

    // MARK: - Life cycle

    func start(_ promise: EventLoopPromise<Void>) {
        eventLoop.assertInEventLoop()
        connectPromise = promise
        run(machine.start())
    }

    func close() {
        eventLoop.assertInEventLoop()
        run(machine.close())
    }

    private func run(_ actions: [ConnectionStateMachine.Action]) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: ConnectionStateMachine.Action) {
        switch action {
        case .connect(let server):
            openChannel(to: server)
        case .upgradeToTLS(let server):
            upgradeToTLS(server)
        case .sendConnect(let server, let info):
            sendConnect(server, info)
        case .handshakeCompleted(let server, _, let isReconnect):
            handshakeCompleted(server, isReconnect: isReconnect)
        case .closeChannel(let error):
            lastChannelError = error.description
            channel?.close(promise: nil)
        case .scheduleReconnect(let delay):
            logger.debug("reconnecting", metadata: ["delay": "\(delay)"])
            reconnectTask = eventLoop.scheduleTask(in: delay.timeAmount) { [self] in
                reconnectTask = nil
                run(machine.reconnectTimerFired())
            }
        case .sendPing:
            var buffer = ByteBuffer()
            ClientCommand.ping(into: &buffer)
            write(buffer)
        case .flushSucceeded(let id):
            flushWaiters.removeValue(forKey: id)?.succeed(())
        case .failFlushes(let ids, let error):
            for id in ids { flushWaiters.removeValue(forKey: id)?.fail(error) }
        case .emit(let event):
            emit(event)
        case .failConnect(let error):
            logger.debug("connect failed", metadata: ["error": "\(error)"])
            connectPromise?.fail(error)
            connectPromise = nil
            teardown(error)
        case .shutdown(let error):
            teardown(error)
        }
    }

    private func openChannel(to server: ServerAddress) {
        generation += 1
        let gen = generation
        channel = nil
        lastChannelError = nil
        logger.debug("connecting", metadata: ["server": "\(server)"])
        let maxMessage = max(64 * 1024 * 1024, machine.maxPayload * 2)
        ClientBootstrap(group: eventLoop)
            .connectTimeout(options.connectTimeout.timeAmount)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NATSChannelHandler(core: self, generation: gen, maxMessageSize: maxMessage))
                }
            }
            .connect(host: server.host, port: server.port)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    if gen != generation || machine.state == .closed { channel.close(promise: nil) }
                case .failure(let error):
                    guard gen == generation else { return }
                    let problem = "\(server): \(error)"
                    if problem != reportedConnectProblem {
                        reportedConnectProblem = problem
                        logger.warning("cannot connect to a NATS server; trying again", metadata: ["problem": "\(problem)"])
                    }
                    run(machine.channelClosed(reason: problem))
                }
            }
    }

    private func upgradeToTLS(_ server: ServerAddress) {
        guard let channel else { return }
        do {
            let context: NIOSSLContext
            if let tlsContext {
                context = tlsContext
            } else if let defaultTLSContext {
                context = defaultTLSContext
            } else {
                context = try NIOSSLContext(configuration: .makeClientConfiguration())
                defaultTLSContext = context
            }
            let isIP = server.host.contains(":") || server.host.allSatisfy { $0.isNumber || $0 == "." }
            let handler = try NIOSSLClientHandler(context: context, serverHostname: isIP ? nil : server.host)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        } catch {
            lastChannelError = "TLS: \(error)"
            channel.close(promise: nil)
        }
    }

    private func sendConnect(_ server: ServerAddress, _ info: ServerInfo) {
        var connect = ConnectInfo()
        connect.name = options.name
        connect.echo = options.echo
        connect.tlsRequired = server.requiresTLS || options.tls != nil
        if let user = server.user ?? options.user {
            connect.user = user
            connect.pass = server.password ?? options.password
        } else if let token = server.token ?? options.token {
            connect.authToken = token
        }
        var buffer = ByteBuffer()
        ClientCommand.connect(connect, into: &buffer)
        ClientCommand.ping(into: &buffer)
        channel?.writeAndFlush(buffer, promise: nil)
    }

    private func handshakeCompleted(_ server: ServerAddress, isReconnect: Bool) {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        if reportedConnectProblem != nil {
            reportedConnectProblem = nil
            logger.info("connected to a NATS server", metadata: ["server": "\(server)"])
        } else {
            logger.debug(isReconnect ? "reconnected" : "connected", metadata: ["server": "\(server)"])
        }
        if isReconnect {
            var buffer = ByteBuffer()
            for (sid, record) in subscriptions.sorted(by: { $0.key < $1.key }) {
                ClientCommand.subscribe(subject: record.subject, queue: record.queue, sid: sid, into: &buffer)
            }
            if buffer.readableBytes > 0 { channel?.write(buffer, promise: nil) }
        }
        if pending.readableBytes > 0 {
            channel?.write(pending, promise: nil)
            pending = ByteBuffer()
        }
        channel?.flush()
        pingTask?.cancel()
        let interval = options.pingInterval.timeAmount
        pingTask = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
            run(machine.pingTimerFired())
        }
        connectPromise?.succeed(())
        connectPromise = nil
    }

    private func teardown(_ error: NATSError?) {
        reconnectTask?.cancel()
        reconnectTask = nil
        handshakeTimer?.cancel()
        handshakeTimer = nil
        pingTask?.cancel()
        pingTask = nil
        if let channel {
            channel.flush()
            channel.close(promise: nil)
        }
        channel = nil
        generation += 1
        pending = ByteBuffer()
        let failure = error ?? .connectionClosed
        for (_, record) in requests {
            record.timeout?.cancel()
            record.promise.fail(failure)
        }
        requests = [:]
        for (_, promise) in flushWaiters { promise.fail(failure) }
        flushWaiters = [:]
        for (_, record) in subscriptions { record.messages.finish(error: error) }
        subscriptions = [:]
        responseSID = nil
        emit(.closed)
        for (_, listener) in listeners { listener.finish() }
        listeners = [:]
        closedPromise.succeed(())
    }

    // MARK: - Channel events (called by the handler, on the event loop)

    func channelActive(_ channel: any Channel, generation gen: UInt64) {
        guard gen == generation else {
            channel.close(promise: nil)
            return
        }
        self.channel = channel
        run(machine.socketConnected())
        handshakeTimer = eventLoop.scheduleTask(in: options.connectTimeout.timeAmount) { [self] in
            guard gen == generation else { return }
            run(machine.handshakeTimedOut())
        }
    }

    func channelInactive(generation gen: UInt64) {
        guard gen == generation else { return }
        channel = nil
        handshakeTimer?.cancel()
        handshakeTimer = nil
        pingTask?.cancel()
        pingTask = nil
        let reason = lastChannelError
        lastChannelError = nil
        logger.debug("channel closed", metadata: ["reason": "\(reason ?? "eof")"])
        run(machine.channelClosed(reason: reason))
    }

    func channelError(_ error: any Error, generation gen: UInt64) {
        guard gen == generation else { return }
        if lastChannelError == nil { lastChannelError = "\(error)" }
    }

    func protocolError(_ error: ProtocolParser.Error, generation gen: UInt64) {
        guard gen == generation else { return }
        logger.warning("protocol error", metadata: ["error": "\(error)"])
        run(machine.protocolError("\(error)"))
    }

    func received(_ op: ServerOp, generation gen: UInt64) {
        guard gen == generation else { return }
        switch op {
        case .msg(let message):
            dispatch(message)
        case .ping:
            var buffer = ByteBuffer()
            ClientCommand.pong(into: &buffer)
            write(buffer)
        case .pong:
            run(machine.receivedPong())
        case .info(let info):
            run(machine.receivedInfo(info))
        case .ok:
            break
        case .err(let message):
            logger.debug("server error", metadata: ["message": "\(message)"])
            run(machine.receivedError(message))
        }
    }

    private func dispatch(_ message: NATSMessage) {
        let sid = message.subscriptionID
        if sid == responseSID {
            handleResponse(message)
            return
        }
        guard let record = subscriptions[sid] else { return }
        switch record.messages.deliver(message) {
        case .delivered:
            if record.isSlow { subscriptions[sid]?.isSlow = false }
        case .dropped(let total):
            if !record.isSlow {
                subscriptions[sid]?.isSlow = true
                logger.warning("slow consumer", metadata: ["subject": "\(record.subject)"])
                emit(.slowConsumer(subject: record.subject, subscriptionID: sid, dropped: total))
            }
        case .finished:
            break
        }
    }

    private func handleResponse(_ message: NATSMessage) {
        guard message.subject.hasPrefix(responsePrefix) else { return }
        let token = String(message.subject.dropFirst(responsePrefix.utf8.count))
        guard let record = requests.removeValue(forKey: token) else { return }
        record.timeout?.cancel()
        if message.status == 503 {
            record.promise.fail(NATSError.noResponders)
        } else {
            record.promise.succeed(message)
        }
    }

    // MARK: - Outbound

    private func write(_ buffer: ByteBuffer) {
        guard let channel else { return }
        channel.write(buffer, promise: nil)
        if !flushScheduled {
            flushScheduled = true
            eventLoop.execute { [self] in
                flushScheduled = false
                self.channel?.flush()
            }
        }
    }

    func publish(subject: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer) throws(NATSError) {
        try SubjectValidation.check(subject)
        if let replyTo { try SubjectValidation.check(replyTo) }
        var headerSize: Int?
        if let headers {
            try HeaderCoding.validate(headers)
            headerSize = HeaderCoding.encodedSize(headers)
        }
        let size = (headerSize ?? 0) + payload.readableBytes
        if size > machine.maxPayload { throw .maxPayloadExceeded(size: size, limit: machine.maxPayload) }
        let estimate = ClientCommand.publishSize(
            subject: subject, replyTo: replyTo, headerSize: headerSize, payloadSize: payload.readableBytes)
        switch machine.outbound(bytes: estimate) {
        case .write where channel != nil:
            var buffer = channel!.allocator.buffer(capacity: estimate)
            ClientCommand.publish(subject: subject, replyTo: replyTo, headers: headers, payload: payload, into: &buffer)
            write(buffer)
        case .write, .buffer:
            ClientCommand.publish(subject: subject, replyTo: replyTo, headers: headers, payload: payload, into: &pending)
        case .reject(let error):
            throw error
        }
    }

    func subscribe(subject: String, queue: String?) throws(NATSError) -> (UInt64, MessageQueue) {
        try SubjectValidation.check(subject)
        if let queue { try SubjectValidation.check(queue) }
        if machine.state == .closed { throw .connectionClosed }
        let sid = nextSID
        nextSID += 1
        let messages = MessageQueue(limit: options.subscriptionBufferLimit, eventLoop: eventLoop)
        subscriptions[sid] = SubscriptionRecord(subject: subject, queue: queue, messages: messages)
        if machine.connectedServer != nil {
            var buffer = ByteBuffer()
            ClientCommand.subscribe(subject: subject, queue: queue, sid: sid, into: &buffer)
            write(buffer)
        }
        return (sid, messages)
    }

    func unsubscribe(sid: UInt64) {
        guard let record = subscriptions.removeValue(forKey: sid) else { return }
        record.messages.finish()
        if machine.connectedServer != nil {
            var buffer = ByteBuffer()
            ClientCommand.unsubscribe(sid: sid, into: &buffer)
            write(buffer)
        }
    }

    func startRequest(
        token: String, subject: String, headers: NATSHeaders?, payload: ByteBuffer, timeout: Duration,
        promise: EventLoopPromise<NATSMessage>
    ) {
        do {
            if responseSID == nil {
                let (sid, _) = try subscribe(subject: responsePrefix + "*", queue: nil)
                responseSID = sid
            }
            let scheduled = eventLoop.scheduleTask(in: timeout.timeAmount) { [self] () -> Void in
                requests.removeValue(forKey: token)?.promise.fail(NATSError.timeout)
            }
            requests[token] = RequestRecord(promise: promise, timeout: scheduled)
            try publish(subject: subject, replyTo: responsePrefix + token, headers: headers, payload: payload)
        } catch {
            requests.removeValue(forKey: token)?.timeout?.cancel()
            promise.fail(error)
        }
    }

    func forgetRequest(token: String) {
        requests.removeValue(forKey: token)?.timeout?.cancel()
    }

    func flush(timeout: Duration, promise: EventLoopPromise<Void>) {
        let id = nextFlushID
        nextFlushID += 1
        switch machine.flush(id: id) {
        case .write where channel != nil:
            flushWaiters[id] = promise
            var buffer = ByteBuffer()
            ClientCommand.ping(into: &buffer)
            write(buffer)
        case .write, .buffer:
            flushWaiters[id] = promise
            ClientCommand.ping(into: &pending)
        case .reject(let error):
            promise.fail(error)
            return
        }
        eventLoop.scheduleTask(in: timeout.timeAmount) { [self] () -> Void in
            flushWaiters.removeValue(forKey: id)?.fail(NATSError.timeout)
        }
    }

    func addListener(_ continuation: AsyncStream<ConnectionEvent>.Continuation) {
        if machine.state == .closed {
            continuation.yield(.closed)
            continuation.finish()
            return
        }
        let id = nextListenerID
        nextListenerID += 1
        listeners[id] = continuation
        continuation.onTermination = { [self] _ in
            eventLoop.execute { self.listeners.removeValue(forKey: id) }
        }
    }

    private func emit(_ event: ConnectionEvent) {
        for (_, listener) in listeners { listener.yield(event) }
    }
}

/// Unique, random identifiers (22 base-62 characters) for inboxes.
enum Nuid {
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    static func next(length: Int = 22) -> String {
        var rng = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(rng.next() % 62)] })
    }
}

/// Feeds bytes to the parser and events to the core. Lives on the core's event loop.
final class NATSChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let core: ConnectionCore
    private let generation: UInt64
    private var parser: ProtocolParser
    private var failed = false

    init(core: ConnectionCore, generation: UInt64, maxMessageSize: Int) {
        self.core = core
        self.generation = generation
        self.parser = ProtocolParser(maxMessageSize: maxMessageSize)
    }

    func channelActive(context: ChannelHandlerContext) {
        core.channelActive(context.channel, generation: generation)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        parser.append(unwrapInboundIn(data))
        do {
            while let op = try parser.next() {
                core.received(op, generation: generation)
            }
        } catch {
            failed = true
            core.protocolError(error, generation: generation)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.channelInactive(generation: generation)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.channelError(error, generation: generation)
        context.close(promise: nil)
    }
}
