import Foundation
import NIOCore

/// Options of a JetStream publish. The expectation headers make the server refuse the message
/// unless the stream is in the stated state (optimistic concurrency).
public struct PublishOptions: Sendable, Hashable {
    /// `Nats-Msg-Id`: the server drops a repeat within the stream's duplicate window and answers
    /// with the original sequence and `duplicate == true`. Makes retries safe.
    public var messageID: String?
    public var expectedStream: String?
    /// `Nats-Expected-Last-Sequence`: the stream's last sequence must be this.
    public var expectedLastSequence: UInt64?
    /// `Nats-Expected-Last-Subject-Sequence`: the last sequence on this subject must be this (0: none).
    public var expectedLastSubjectSequence: UInt64?
    public var expectedLastMessageID: String?
    /// Overall time for the publish, including retries while the stream has no leader.
    public var timeout: Duration?

    public init(
        messageID: String? = nil, expectedStream: String? = nil, expectedLastSequence: UInt64? = nil,
        expectedLastSubjectSequence: UInt64? = nil, expectedLastMessageID: String? = nil, timeout: Duration? = nil
    ) {
        self.messageID = messageID
        self.expectedStream = expectedStream
        self.expectedLastSequence = expectedLastSequence
        self.expectedLastSubjectSequence = expectedLastSubjectSequence
        self.expectedLastMessageID = expectedLastMessageID
        self.timeout = timeout
    }

    func apply(to headers: inout NATSHeaders) {
        if let messageID { headers[NATSHeaderName.msgID] = messageID }
        if let expectedStream { headers[NATSHeaderName.expectedStream] = expectedStream }
        if let expectedLastSequence { headers[NATSHeaderName.expectedLastSequence] = String(expectedLastSequence) }
        if let expectedLastSubjectSequence {
            headers[NATSHeaderName.expectedLastSubjectSequence] = String(expectedLastSubjectSequence)
        }
        if let expectedLastMessageID { headers[NATSHeaderName.expectedLastMsgID] = expectedLastMessageID }
    }
}

/// Entry point to JetStream on a ``NATSClient``: streams, publishing with acknowledgement,
/// consumers, in-order reads and key-value buckets, all over the `$JS.API` request subjects.
public struct JetStreamContext: Sendable {
    public let client: NATSClient
    /// `$JS.API` by default; `$JS.<domain>.API` for a JetStream domain.
    public let apiPrefix: String
    /// Time limit of each API request.
    public let timeout: Duration

    public init(client: NATSClient, domain: String? = nil, timeout: Duration = .seconds(5)) {
        self.client = client
        self.apiPrefix = domain.map { "$JS.\($0).API" } ?? "$JS.API"
        self.timeout = timeout
    }

    // MARK: - API plumbing

    func request<Response: Decodable>(
        _ subject: String, payload: ByteBuffer = ByteBuffer(), as type: Response.Type
    ) async throws -> Response {
        let reply = try await client.request("\(apiPrefix).\(subject)", payload: payload, timeout: timeout)
        return try JSONCoding.decodeResponse(type, from: reply)
    }

    func request<Body: Encodable, Response: Decodable>(
        _ subject: String, body: Body, as type: Response.Type
    ) async throws -> Response {
        try await request(subject, payload: try JSONCoding.encode(body), as: type)
    }

    static func validateName(_ name: String) throws {
        if name.isEmpty || name.utf8.contains(where: { $0 <= 32 || $0 == 46 || $0 == 42 || $0 == 62 || $0 == 127 }) {
            throw JetStreamError.invalidName(name)
        }
    }

    // MARK: - Account and streams

    public func accountInfo() async throws -> AccountInfo {
        try await request("INFO", as: AccountInfo.self)
    }

    /// Creates a stream; fails with error code 10058 if one with another configuration exists.
    public func createStream(_ config: StreamConfig) async throws -> StreamInfo {
        try Self.validateName(config.name)
        return try await request("STREAM.CREATE.\(config.name)", body: config, as: StreamInfo.self)
    }

    public func updateStream(_ config: StreamConfig) async throws -> StreamInfo {
        try Self.validateName(config.name)
        return try await request("STREAM.UPDATE.\(config.name)", body: config, as: StreamInfo.self)
    }

    /// Creates the stream, or updates it when it already exists.
    public func createOrUpdateStream(_ config: StreamConfig) async throws -> StreamInfo {
        do {
            return try await createStream(config)
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNameInUseCode {
            return try await updateStream(config)
        }
    }

    public func streamInfo(_ name: String) async throws -> StreamInfo {
        try Self.validateName(name)
        return try await request("STREAM.INFO.\(name)", as: StreamInfo.self)
    }

    public func deleteStream(_ name: String) async throws {
        try Self.validateName(name)
        _ = try await request("STREAM.DELETE.\(name)", as: SuccessResponse.self)
    }

    /// Removes every message of the stream; its sequence goes on from where it was.
    public func purgeStream(_ name: String) async throws {
        try Self.validateName(name)
        _ = try await request("STREAM.PURGE.\(name)", as: SuccessResponse.self)
    }

    /// A handle for reading one stream.
    public func stream(_ name: String) -> StreamHandle {
        StreamHandle(context: self, name: name)
    }

    /// Reads one stored message by sequence; `nil` if there is none (deleted or not yet written).
    public func getMessage(stream: String, sequence: UInt64) async throws -> StreamMessage? {
        try await getMessage(stream: stream, request: MessageGetRequest(seq: sequence))
    }

    /// The last message stored on `subject`, or `nil`.
    public func getLastMessage(stream: String, subject: String) async throws -> StreamMessage? {
        try await getMessage(stream: stream, request: MessageGetRequest(lastBySubject: subject))
    }

    private func getMessage(stream: String, request body: MessageGetRequest) async throws -> StreamMessage? {
        try Self.validateName(stream)
        let response: MessageGetResponse
        do {
            response = try await request("STREAM.MSG.GET.\(stream)", body: body, as: MessageGetResponse.self)
        } catch let error as JetStreamError where error.errorCode == JetStreamError.noMessageFoundCode {
            return nil
        }
        let m = response.message
        var headers: NATSHeaders?
        if let h = m.hdrs, let data = Data(base64Encoded: h), !data.isEmpty {
            headers = try HeaderCoding.parse(ByteBuffer(bytes: data).readableBytesView)
        }
        let payload = m.data.flatMap { Data(base64Encoded: $0) }.map { ByteBuffer(bytes: $0) } ?? ByteBuffer()
        return StreamMessage(
            subject: m.subject, sequence: m.seq, headers: headers, payload: payload,
            timestampNanos: m.time.flatMap(JSONCoding.parseTimestamp))
    }

    // MARK: - Publish

    /// Publishes to a subject a stream captures and waits for the stream's acknowledgement.
    /// While the stream has no leader (no responders) it retries until the timeout.
    public func publish(
        _ subject: String, payload: ByteBuffer = ByteBuffer(), headers: NATSHeaders? = nil,
        options: PublishOptions = PublishOptions()
    ) async throws -> PubAck {
        var headers = headers ?? NATSHeaders()
        options.apply(to: &headers)
        let clock = ContinuousClock()
        let deadline = clock.now + (options.timeout ?? timeout)
        var backoff = Duration.milliseconds(25)
        while true {
            let remaining = deadline - clock.now
            if remaining <= .zero { throw NATSError.timeout }
            do {
                let reply = try await client.request(
                    subject, payload: payload, headers: headers.isEmpty ? nil : headers, timeout: remaining)
                return try JSONCoding.decodeResponse(PubAck.self, from: reply)
            } catch NATSError.noResponders {
                if clock.now + backoff >= deadline { throw NATSError.noResponders }
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .milliseconds(500))
            }
        }
    }

    public func publish(
        _ subject: String, payload: [UInt8], headers: NATSHeaders? = nil, options: PublishOptions = PublishOptions()
    ) async throws -> PubAck {
        try await publish(subject, payload: ByteBuffer(bytes: payload), headers: headers, options: options)
    }

    public func publish(
        _ subject: String, payload: String, headers: NATSHeaders? = nil, options: PublishOptions = PublishOptions()
    ) async throws -> PubAck {
        try await publish(subject, payload: ByteBuffer(string: payload), headers: headers, options: options)
    }

    // MARK: - Consumers

    /// Creates a consumer: durable if `config.durableName` is set, else ephemeral.
    public func createConsumer(stream: String, config: ConsumerConfig) async throws -> ConsumerInfo {
        try Self.validateName(stream)
        let body = ConsumerCreateRequest(streamName: stream, config: config)
        if let durable = config.durableName {
            try Self.validateName(durable)
            return try await request("CONSUMER.DURABLE.CREATE.\(stream).\(durable)", body: body, as: ConsumerInfo.self)
        }
        return try await request("CONSUMER.CREATE.\(stream)", body: body, as: ConsumerInfo.self)
    }

    public func consumerInfo(stream: String, consumer: String) async throws -> ConsumerInfo {
        try Self.validateName(stream)
        try Self.validateName(consumer)
        return try await request("CONSUMER.INFO.\(stream).\(consumer)", as: ConsumerInfo.self)
    }

    /// Names of the stream's consumers (first page of up to 1024 names).
    public func consumerNames(stream: String) async throws -> [String] {
        try Self.validateName(stream)
        struct Page: Decodable { var consumers: [String]? }
        struct Offset: Encodable { var offset = 0 }
        return try await request("CONSUMER.NAMES.\(stream)", body: Offset(), as: Page.self).consumers ?? []
    }

    public func deleteConsumer(stream: String, consumer: String) async throws {
        try Self.validateName(stream)
        try Self.validateName(consumer)
        _ = try await request("CONSUMER.DELETE.\(stream).\(consumer)", as: SuccessResponse.self)
    }

    /// Pulls up to `batch` messages from a pull consumer, waiting at most `expires` for them.
    /// Returns early with what arrived when the server ends the request (404/408). With
    /// `AckPolicy.explicit` acknowledge each with ``acknowledge(_:)``.
    public func fetch(
        stream: String, consumer: String, batch: Int, expires: Duration = .seconds(5)
    ) async throws -> [JetStreamMessage] {
        let inbox = client.newInbox()
        // Released (and so unsubscribed) when this function returns, also by throwing.
        let subscription = try await client.subscribe(inbox)
        let pull = PullRequest(batch: batch, expires: expires.nanoseconds, idleHeartbeat: nil, noWait: nil)
        try await client.publish(
            "\(apiPrefix).CONSUMER.MSG.NEXT.\(stream).\(consumer)", payload: try JSONCoding.encode(pull),
            replyTo: inbox)
        var messages: [JetStreamMessage] = []
        let clock = ContinuousClock()
        let deadline = clock.now + expires + .seconds(1)
        while messages.count < batch {
            let remaining = deadline - clock.now
            guard remaining > .zero else { break }
            guard case .message(let m) = try await subscription.messages.next(timeout: remaining) else { break }
            if let status = m.status {
                if status == 100 { continue }
                if status == 404 || status == 408 || status == 409 { break }
                if status == 503 { throw NATSError.noResponders }
                continue
            }
            guard let replyTo = m.replyTo, let meta = DeliveryMetadata(replySubject: replyTo) else { continue }
            messages.append(JetStreamMessage(message: m, metadata: meta))
        }
        await subscription.unsubscribe()
        return messages
    }

    /// Acknowledges a message delivered by a consumer with explicit acknowledgement.
    public func acknowledge(_ message: JetStreamMessage) async throws {
        guard let replyTo = message.message.replyTo else { return }
        try await client.publish(replyTo, payload: "+ACK")
    }
}

/// A message delivered by a consumer, with its delivery metadata.
public struct JetStreamMessage: Sendable, Hashable {
    public var message: NATSMessage
    public var metadata: DeliveryMetadata

    public var subject: String { message.subject }
    public var payload: ByteBuffer { message.payload }
    public var headers: NATSHeaders? { message.headers }
    public var streamSequence: UInt64 { metadata.streamSequence }
}

/// A named stream: reads in order and direct gets.
public struct StreamHandle: Sendable {
    public let context: JetStreamContext
    public let name: String

    public func info() async throws -> StreamInfo { try await context.streamInfo(name) }

    public func getMessage(sequence: UInt64) async throws -> StreamMessage? {
        try await context.getMessage(stream: name, sequence: sequence)
    }

    /// Reads the stream in order from `sequence` in batches of at most `batch` messages, then keeps
    /// following new messages. A batch is handed out as soon as it is full or the reader has caught
    /// up with the stream's end. See ``StreamReader``.
    ///
    /// ```swift
    /// for try await batch in js.stream("LOG").read(from: 1, batch: 100) {
    ///     for message in batch { apply(message) }
    /// }
    /// ```
    public func read(
        from sequence: UInt64, batch: Int = 256, filterSubject: String? = nil, expires: Duration = .seconds(5)
    ) -> StreamReader {
        StreamReader(
            context: context, stream: name, filterSubject: filterSubject,
            start: sequence <= 1 ? .all : .byStartSequence(sequence), batch: batch, expires: expires)
    }
}
