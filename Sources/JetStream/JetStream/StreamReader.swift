import NIOCore

/// Reads a stream in order, in batches, and keeps following it: an `AsyncSequence` of
/// `[StreamMessage]` whose sequences strictly increase without gaps (other than messages the
/// stream no longer holds, or that a filter excludes).
///
/// It works like the ordered consumers of the official clients, on a pull basis: an ephemeral,
/// unacknowledged, single-replica consumer starts at the wanted sequence and is pulled with
/// `batch`, `expires` and an idle heartbeat on a private inbox. When the consumer's sequence skips
/// (messages lost over a reconnect), heartbeats stop (its server died), or the server reports it
/// gone, the reader drops it and creates a new one from the next sequence it has not handed out.
/// Transient API failures are retried with back-off; cancelling the iterating task ends it.
public struct StreamReader: AsyncSequence, Sendable {
    public typealias Element = [StreamMessage]

    let context: JetStreamContext
    let stream: String
    let filterSubject: String?
    let start: DeliverPolicy
    let batch: Int
    let expires: Duration

    init(
        context: JetStreamContext, stream: String, filterSubject: String?, start: DeliverPolicy, batch: Int,
        expires: Duration
    ) {
        self.context = context
        self.stream = stream
        self.filterSubject = filterSubject
        self.start = start
        self.batch = Swift.max(1, batch)
        self.expires = Swift.max(expires, .milliseconds(500))
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(reader: self)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let reader: StreamReader
        private var subscription: Subscription?
        private var consumer: String?
        /// The next stream sequence not yet handed out; `nil` until the first message.
        private var nextStreamSequence: UInt64?
        private var expectedConsumerSequence: UInt64 = 1
        /// Messages still owed by the outstanding pull request; 0 when none is outstanding.
        private var remaining = 0
        private var failures = 0

        init(reader: StreamReader) {
            self.reader = reader
        }

        var heartbeat: Duration {
            Swift.min(Swift.max(reader.expires / 5, .milliseconds(100)), .seconds(5))
        }

        public mutating func next() async throws -> [StreamMessage]? {
            var collected: [StreamMessage] = []
            while true {
                try Task.checkCancellation()
                if consumer == nil {
                    try await createConsumer()
                }
                guard let subscription, let consumer else { continue }
                if remaining == 0 {
                    do {
                        try await sendPull(consumer)
                    } catch let error as NATSError where error != .connectionClosed {
                        try await recover(after: error)
                        continue
                    }
                }
                // Heartbeats arrive every `heartbeat` while a pull waits; missing three means the
                // consumer or its server is gone.
                let next = try await subscription.messages.next(timeout: heartbeat * 3)
                switch next {
                case .finished:
                    throw NATSError.connectionClosed
                case .timedOut:
                    reset()
                    if !collected.isEmpty { return collected }
                case .message(let m):
                    if let status = m.status {
                        switch status {
                        case 100:
                            continue
                        case 404, 408:
                            remaining = 0
                        case 409:
                            let text = (m.headers?.statusDescription ?? "").lowercased()
                            if text.contains("deleted") || text.contains("push based") { reset() } else { remaining = 0 }
                        case 503:
                            try await recover(after: NATSError.noResponders)
                        default:
                            remaining = 0
                        }
                        if !collected.isEmpty { return collected }
                        continue
                    }
                    guard let replyTo = m.replyTo, let meta = DeliveryMetadata(replySubject: replyTo),
                        meta.consumer == consumer
                    else { continue }
                    if meta.consumerSequence != expectedConsumerSequence {
                        // A gap: messages were lost (for example during a reconnect). Start over
                        // from the first sequence not yet handed out.
                        reset()
                        if !collected.isEmpty { return collected }
                        continue
                    }
                    failures = 0
                    expectedConsumerSequence += 1
                    remaining = Swift.max(0, remaining - 1)
                    nextStreamSequence = meta.streamSequence + 1
                    collected.append(
                        StreamMessage(
                            subject: m.subject, sequence: meta.streamSequence, headers: m.headers,
                            payload: m.payload, timestampNanos: meta.timestampNanos, pending: meta.pending))
                    if collected.count >= reader.batch || meta.pending == 0 { return collected }
                }
            }
        }

        private mutating func createConsumer() async throws {
            let policy: DeliverPolicy = nextStreamSequence.map { .byStartSequence($0) } ?? reader.start
            var config = ConsumerConfig(deliverPolicy: policy, ackPolicy: .none, filterSubject: reader.filterSubject)
            config.inactiveThreshold = .seconds(30)
            config.replicas = 1
            config.memoryStorage = true
            let client = reader.context.client
            let inbox = client.newInbox()
            do {
                let subscription = try await client.subscribe(inbox)
                let info = try await reader.context.createConsumer(stream: reader.stream, config: config)
                self.subscription = subscription
                self.consumer = info.name
                expectedConsumerSequence = 1
                remaining = 0
            } catch {
                try await recover(after: error)
            }
        }

        private mutating func sendPull(_ consumer: String) async throws {
            let pull = PullRequest(
                batch: reader.batch, expires: reader.expires.nanoseconds, idleHeartbeat: heartbeat.nanoseconds)
            try await reader.context.client.publish(
                "\(reader.context.apiPrefix).CONSUMER.MSG.NEXT.\(reader.stream).\(consumer)",
                payload: try JSONCoding.encode(pull), replyTo: subscription?.subject)
            remaining = reader.batch
        }

        /// Forgets the current consumer so the next round creates a new one.
        private mutating func reset() {
            let old = consumer
            consumer = nil
            subscription = nil  // released: unsubscribes
            remaining = 0
            if let old {
                Self.forget(old, stream: reader.stream, context: reader.context)
            }
        }

        private static func forget(_ consumer: String, stream: String, context: JetStreamContext) {
            // The consumer is ephemeral and also disappears after its inactive threshold; this
            // fire-and-forget delete only frees it sooner. It is a plain publish: no task needed.
            let subject = "\(context.apiPrefix).CONSUMER.DELETE.\(stream).\(consumer)"
            let client = context.client
            client.eventLoop.execute {
                try? client.core.publish(subject: subject, replyTo: nil, headers: nil, payload: ByteBuffer())
            }
        }

        /// Throws errors that retrying cannot fix; otherwise backs off and resets.
        private mutating func recover(after error: any Error) async throws {
            if !Self.isTransient(error) { throw error }
            reset()
            failures += 1
            let delay = Swift.min(Duration.milliseconds(50) * (1 << Swift.min(failures, 6)), .seconds(2))
            try await Task.sleep(for: delay)
        }

        static func isTransient(_ error: any Error) -> Bool {
            switch error {
            case let e as NATSError:
                return e == .timeout || e == .noResponders || e == .reconnectBufferExceeded
            case let e as JetStreamError:
                if case .api(let status, let code, _) = e {
                    return status >= 500 || code == 10008 || code == 10023
                }
                return false
            default:
                return false
            }
        }
    }
}
