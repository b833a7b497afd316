import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A connection to a NATS server or cluster.
///
/// It reconnects by itself (over the configured servers and those the cluster announces),
/// resubscribes afterwards and sends publishes made while disconnected from a bounded buffer.
/// Call ``close()`` when done, or use ``withConnection(_:eventLoopGroup:_:)``.
///
/// ```swift
/// let client = try await NATSClient.connect(NATSOptions(servers: ["nats://127.0.0.1:4222"]))
/// let sub = try await client.subscribe("greet.*")
/// try await client.publish("greet.joe", payload: "hello")
/// for try await message in sub { print(message.string) }
/// ```
public final class NATSClient: Sendable {
    let core: ConnectionCore
    private let tokens = NIOLockedValueBox<UInt64>(0)

    /// The event loop all of this client's I/O runs on.
    public var eventLoop: any EventLoop { core.eventLoop }

    private init(core: ConnectionCore) {
        self.core = core
    }

    /// A client that is released without ``close()`` is closed (its subscriptions end).
    deinit {
        let core = self.core
        core.eventLoop.execute { core.close() }
    }

    /// Connects to the first reachable server of `options.servers`.
    public static func connect(
        _ options: NATSOptions, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> NATSClient {
        var servers: [ServerAddress] = []
        for url in options.servers { servers.append(try ServerAddress(url)) }
        let eventLoop = eventLoopGroup.next()
        let core = try ConnectionCore(options: options, servers: servers, eventLoop: eventLoop)
        let promise = eventLoop.makePromise(of: Void.self)
        eventLoop.execute { core.start(promise) }
        try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
            eventLoop.execute { core.close() }
        }
        return NATSClient(core: core)
    }

    /// Connects, runs `body` and closes the client, also when `body` throws.
    public static func withConnection<T: Sendable>(
        _ options: NATSOptions, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        _ body: (NATSClient) async throws -> T
    ) async throws -> T {
        let client = try await connect(options, eventLoopGroup: eventLoopGroup)
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }

    // MARK: - State

    /// The server the client is connected to, or `nil` while disconnected.
    public var connectedServer: ServerAddress? {
        get async { try? await core.eventLoop.submit { self.core.connectedServer }.get() }
    }

    /// The `INFO` of the current server.
    public var serverInfo: ServerInfo? {
        get async { try? await core.eventLoop.submit { self.core.serverInfo }.get() }
    }

    /// Every server the client knows, configured and discovered.
    public var knownServers: [ServerAddress] {
        get async { (try? await core.eventLoop.submit { self.core.knownServers }.get()) ?? [] }
    }

    /// The largest message (headers and payload) the server accepts.
    public var maxPayload: Int {
        get async { (try? await core.eventLoop.submit { self.core.maxPayload }.get()) ?? 1_048_576 }
    }

    /// Connection events: disconnects, reconnects, discovered servers, slow consumers, close.
    /// The stream keeps the newest 256 events if not read.
    public func events() -> AsyncStream<ConnectionEvent> {
        let (stream, continuation) = AsyncStream<ConnectionEvent>.makeStream(bufferingPolicy: .bufferingNewest(256))
        core.eventLoop.execute { self.core.addListener(continuation) }
        return stream
    }

    /// A fresh unique subject under the inbox prefix, for custom reply subscriptions.
    public func newInbox() -> String {
        "\(core.options.inboxPrefix).\(Nuid.next())"
    }

    // MARK: - Publish and subscribe

    /// Publishes a message. It returns once the message is queued for the socket (or, while
    /// reconnecting, the reconnect buffer); ``flush(timeout:)`` confirms the server has it.
    public func publish(
        _ subject: String, payload: ByteBuffer = ByteBuffer(), headers: NATSHeaders? = nil, replyTo: String? = nil
    ) async throws {
        let core = self.core
        try await core.eventLoop.submit {
            try core.publish(subject: subject, replyTo: replyTo, headers: headers, payload: payload)
        }.get()
    }

    public func publish(
        _ subject: String, payload: [UInt8], headers: NATSHeaders? = nil, replyTo: String? = nil
    ) async throws {
        try await publish(subject, payload: ByteBuffer(bytes: payload), headers: headers, replyTo: replyTo)
    }

    public func publish(
        _ subject: String, payload: String, headers: NATSHeaders? = nil, replyTo: String? = nil
    ) async throws {
        try await publish(subject, payload: ByteBuffer(string: payload), headers: headers, replyTo: replyTo)
    }

    /// Subscribes to `subject` (wildcards `*` and `>` allowed), optionally in a queue group.
    /// The subscription survives reconnects; it ends on ``Subscription/unsubscribe()`` or close.
    public func subscribe(_ subject: String, queue: String? = nil) async throws -> Subscription {
        let core = self.core
        let (sid, messages) = try await core.eventLoop.submit {
            try core.subscribe(subject: subject, queue: queue)
        }.get()
        return Subscription(core: core, id: sid, subject: subject, queue: queue, messages: messages)
    }

    /// Sends a request and waits for the first reply. Replies arrive on one shared inbox
    /// subscription. Throws ``NATSError/noResponders`` if nobody listens on `subject` and
    /// ``NATSError/timeout`` if no reply arrives in time.
    public func request(
        _ subject: String, payload: ByteBuffer = ByteBuffer(), headers: NATSHeaders? = nil,
        timeout: Duration = .seconds(5)
    ) async throws -> NATSMessage {
        let core = self.core
        let token = tokens.withLockedValue { value in
            value += 1
            return String(value, radix: 36)
        }
        let promise = core.eventLoop.makePromise(of: NATSMessage.self)
        core.eventLoop.execute {
            core.startRequest(
                token: token, subject: subject, headers: headers, payload: payload, timeout: timeout,
                promise: promise)
        }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
            core.eventLoop.execute { core.forgetRequest(token: token) }
        }
    }

    public func request(
        _ subject: String, payload: String, headers: NATSHeaders? = nil, timeout: Duration = .seconds(5)
    ) async throws -> NATSMessage {
        try await request(subject, payload: ByteBuffer(string: payload), headers: headers, timeout: timeout)
    }

    /// Round-trips a `PING` so everything published before has reached the server.
    public func flush(timeout: Duration = .seconds(5)) async throws {
        let core = self.core
        let promise = core.eventLoop.makePromise(of: Void.self)
        core.eventLoop.execute { core.flush(timeout: timeout, promise: promise) }
        try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
        }
    }

    /// Flushes what is queued (briefly), then closes: subscriptions end, pending requests fail.
    public func close() async {
        if await connectedServer != nil {
            try? await flush(timeout: .seconds(2))
        }
        let core = self.core
        core.eventLoop.execute { core.close() }
        try? await core.closedPromise.futureResult.get()
    }
}

/// A subscription: an `AsyncSequence` of messages with a bounded buffer. When the buffer is full,
/// new messages are dropped and counted (``droppedCount``) and a
/// ``ConnectionEvent/slowConsumer(subject:subscriptionID:dropped:)`` event is emitted.
///
/// Iterate it from one task. It unsubscribes when released, or on ``unsubscribe()``.
public final class Subscription: AsyncSequence, Sendable {
    public typealias Element = NATSMessage

    public let id: UInt64
    public let subject: String
    public let queue: String?
    let core: ConnectionCore
    let messages: MessageQueue

    init(core: ConnectionCore, id: UInt64, subject: String, queue: String?, messages: MessageQueue) {
        self.core = core
        self.id = id
        self.subject = subject
        self.queue = queue
        self.messages = messages
    }

    deinit {
        let core = self.core, id = self.id
        core.eventLoop.execute { core.unsubscribe(sid: id) }
    }

    /// Messages dropped because the buffer was full.
    public var droppedCount: UInt64 { messages.droppedCount }

    /// Stops the subscription; iteration ends after the messages already buffered.
    public func unsubscribe() async {
        let core = self.core, id = self.id
        try? await core.eventLoop.submit { core.unsubscribe(sid: id) }.get()
    }

    /// The next message, `nil` at the end, or throws ``NATSError/timeout`` after `timeout`.
    public func next(timeout: Duration) async throws -> NATSMessage? {
        switch try await messages.next(timeout: timeout) {
        case .message(let m): return m
        case .finished: return nil
        case .timedOut: throw NATSError.timeout
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: Subscription

        public mutating func next() async throws -> NATSMessage? {
            switch try await subscription.messages.next() {
            case .message(let m): return m
            case .finished, .timedOut: return nil
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
}
