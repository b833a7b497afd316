import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The thin I/O shell around `SessionStateMachine`: it performs the machine's actions (TCP
/// connections, writes, timers) with NIO and feeds their outcomes back as events. Everything
/// except `snapshot` and the request-id counter is confined to `eventLoop`.
final class ClientDriver: @unchecked Sendable {
    typealias Action = SessionStateMachine.Action
    typealias ConnectionID = SessionStateMachine.ConnectionID
    typealias RequestID = SessionStateMachine.RequestID
    typealias TimerKind = SessionStateMachine.TimerKind

    /// What the synchronous getters of `ZooKeeperClient` read.
    struct Snapshot {
        var credentials: SessionCredentials?
        var server: ServerAddress?
        var timeoutMs: Int32?
        var state: ZooKeeperConnectionState = .suspended
    }

    let eventLoop: any EventLoop
    let logger: Logger
    let snapshot = NIOLockedValueBox(Snapshot())
    private let requestIDs = NIOLockedValueBox<RequestID>(0)

    // Confined to eventLoop.
    var core: SessionStateMachine
    private var channels: [ConnectionID: any Channel] = [:]
    private var connecting: Set<ConnectionID> = []
    private var abandoned: Set<ConnectionID> = []
    private var timers: [TimerKind: Scheduled<Void>] = [:]
    private var requests: [RequestID: CheckedContinuation<Response, any Error>] = [:]
    private var requestWatches: [RequestID: WatchID] = [:]
    private var watchBoxes: [WatchID: WatchBox] = [:]
    private var nextWatchID: WatchID = 1
    private var subscribers: [UInt64: AsyncStream<ZooKeeperConnectionState>.Continuation] = [:]
    private var nextSubscriber: UInt64 = 0
    private var startup: CheckedContinuation<Void, any Error>?
    private var startCancelled = false

    init(eventLoop: any EventLoop, configuration: SessionStateMachine.Configuration, logger: Logger) {
        self.eventLoop = eventLoop
        self.logger = logger
        self.core = SessionStateMachine(configuration: configuration)
    }

    private func makeRequestID() -> RequestID {
        requestIDs.withLockedValue { $0 += 1; return $0 }
    }

    // MARK: Caller entry points

    func start() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                eventLoop.execute {
                    if self.startCancelled { continuation.resume(throwing: CancellationError()); return }
                    self.startup = continuation
                    self.run(self.core.start())
                }
            }
        } onCancel: {
            let id = makeRequestID()
            eventLoop.execute {
                self.startCancelled = true
                if self.startup != nil { self.run(self.core.close(id: id)) }
            }
        }
    }

    /// Runs `body` on the event loop with a fresh request id and waits for that request's completion.
    func perform(_ body: @escaping @Sendable (ClientDriver, RequestID) -> [Action]) async throws -> Response {
        let id = makeRequestID()
        let cancelled = NIOLockedValueBox(false)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Response, any Error>) in
                eventLoop.execute {
                    if cancelled.withLockedValue({ $0 }) { continuation.resume(throwing: CancellationError()); return }
                    self.requests[id] = continuation
                    self.run(body(self, id))
                }
            }
        } onCancel: {
            cancelled.withLockedValue { $0 = true }
            eventLoop.execute { self.cancel(id) }
        }
    }

    /// Submits a request that leaves a watch; `box` receives the event.
    func submit(_ request: Request, id: RequestID, watch box: WatchBox) -> [Action] {
        let watchID = nextWatchID
        nextWatchID += 1
        watchBoxes[watchID] = box
        requestWatches[id] = watchID
        return core.submit(request, id: id, watch: watchID)
    }

    func closeSession() async throws {
        _ = try await perform { driver, id in driver.core.close(id: id) }
    }

    /// Closes the session from `ZooKeeperClient.deinit`: nobody waits for the outcome.
    func closeAbandoned() {
        let id = makeRequestID()
        eventLoop.execute { self.run(self.core.close(id: id)) }
    }

    func subscribe() -> AsyncStream<ZooKeeperConnectionState> {
        let (stream, continuation) = AsyncStream.makeStream(of: ZooKeeperConnectionState.self)
        eventLoop.execute {
            let current = self.snapshot.withLockedValue { $0.state }
            continuation.yield(current)
            if current == .closed || current == .expired {
                continuation.finish()
                return
            }
            let id = self.nextSubscriber
            self.nextSubscriber += 1
            self.subscribers[id] = continuation
            continuation.onTermination = { _ in
                self.eventLoop.execute { self.subscribers.removeValue(forKey: id) }
            }
        }
        return stream
    }

    private func cancel(_ id: RequestID) {
        core.cancel(id)
        if let watchID = requestWatches.removeValue(forKey: id) { watchBoxes.removeValue(forKey: watchID) }
        requests.removeValue(forKey: id)?.resume(throwing: CancellationError())
    }

    // MARK: Events from NIO

    fileprivate func connectCompleted(_ id: ConnectionID, _ result: Result<any Channel, any Error>) {
        eventLoop.assertInEventLoop()
        connecting.remove(id)
        switch result {
        case .success(let channel):
            if abandoned.remove(id) != nil {
                channel.close(promise: nil)
                return
            }
            channels[id] = channel
            run(core.connectionEstablished(id))
        case .failure(let error):
            abandoned.remove(id)
            logger.debug("ZooKeeper connection failed", metadata: ["error": "\(error)"])
            run(core.connectionFailed(id))
        }
    }

    fileprivate func received(_ id: ConnectionID, _ bytes: ByteBuffer) {
        run(core.bytesReceived(id, bytes))
    }

    fileprivate func closed(_ id: ConnectionID) {
        channels.removeValue(forKey: id)
        run(core.connectionClosed(id))
    }

    private func timerFired(_ timer: SessionStateMachine.TimerID) {
        run(core.timerFired(timer))
    }

    // MARK: Actions

    private func run(_ actions: [Action]) {
        eventLoop.assertInEventLoop()
        // The machine already changed: publish its view before any continuation resumes.
        let server = core.connectedServer
        let credentials = core.session
        let timeout = core.negotiatedTimeoutMs
        let state = actions.last { if case .stateChanged = $0 { true } else { false } }
        snapshot.withLockedValue {
            $0.server = server
            $0.credentials = credentials
            $0.timeoutMs = timeout
            if case .stateChanged(let state) = state { $0.state = state }
        }
        for action in actions {
            switch action {
            case .connect(let id, let server):
                connect(id, to: server)
            case .write(let id, let bytes):
                channels[id]?.writeAndFlush(bytes, promise: nil)
            case .closeConnection(let id):
                if let channel = channels.removeValue(forKey: id) {
                    channel.close(promise: nil)
                } else if connecting.contains(id) {
                    abandoned.insert(id)
                }
            case .scheduleTimer(let timer, let delay):
                timers[timer.kind]?.cancel()
                timers[timer.kind] = eventLoop.scheduleTask(in: .nanoseconds(delay.nanoseconds)) {
                    self.timerFired(timer)
                }
            case .cancelTimer(let kind):
                timers.removeValue(forKey: kind)?.cancel()
            case .complete(let id, let result):
                if let watchID = requestWatches.removeValue(forKey: id), case .failure = result {
                    watchBoxes.removeValue(forKey: watchID)
                }
                requests.removeValue(forKey: id)?.resume(with: result.mapError { $0 })
            case .fireWatches(let ids, let event):
                for id in ids { watchBoxes.removeValue(forKey: id)?.resolve(.success(event)) }
            case .failWatches(let ids, let error):
                for id in ids { watchBoxes.removeValue(forKey: id)?.resolve(.failure(error)) }
            case .stateChanged(let state):
                publish(state)
            }
        }
    }

    private func connect(_ id: ConnectionID, to server: ServerAddress) {
        connecting.insert(id)
        logger.debug("ZooKeeper connecting", metadata: ["server": "\(server)"])
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(core.connectTimeout.nanoseconds))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(driver: self, id: id))
                }
            }
            .connect(host: server.host, port: server.port)
            .whenComplete { result in self.connectCompleted(id, result) }
    }

    private func publish(_ state: ZooKeeperConnectionState) {
        logger.debug("ZooKeeper session \(state)", metadata: [
            "session": "\(String(core.session?.id ?? 0, radix: 16))",
            "server": "\(core.connectedServer.map(\.description) ?? "-")",
        ])
        snapshot.withLockedValue { $0.state = state }
        for subscriber in subscribers.values { subscriber.yield(state) }
        let terminal = state == .closed || state == .expired
        if terminal {
            let finished = subscribers.values
            subscribers = [:]
            for subscriber in finished { subscriber.finish() }
            for timer in timers.values { timer.cancel() }
            timers = [:]
        }
        if let startup {
            switch state {
            case .connected, .reconnected:
                self.startup = nil
                startup.resume()
            case .closed:
                self.startup = nil
                startup.resume(throwing: startCancelled ? CancellationError() : ZooKeeperError.connectionLoss)
            case .expired:
                self.startup = nil
                startup.resume(throwing: ZooKeeperError.sessionExpired)
            case .suspended:
                break
            }
        }
    }
}

/// Feeds one connection's bytes and closure to the driver.
private final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let driver: ClientDriver
    private let id: ClientDriver.ConnectionID

    init(driver: ClientDriver, id: ClientDriver.ConnectionID) {
        self.driver = driver
        self.id = id
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        driver.received(id, unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        driver.closed(id)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        driver.logger.debug("ZooKeeper connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
