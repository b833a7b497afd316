import Foundation
import NIOCore

// JSON types of the `$JS.API` subjects. Durations travel as nanoseconds; absent fields decode to
// their defaults so that newer servers with more fields and older ones with fewer both work.

/// An error answered by the JetStream API, or a client-side JetStream failure.
public enum JetStreamError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The API answered with `{"error": {...}}`. `errorCode` is the stable JetStream code
    /// (for example 10059 stream not found, 10071 wrong last sequence).
    case api(status: Int, errorCode: Int, description: String)
    /// The answer could not be decoded.
    case invalidResponse(String)
    case invalidName(String)
    case invalidKey(String)
    /// `KeyValue.create` found a live value.
    case keyExists(key: String, revision: UInt64)
    /// `KeyValue.update` found a different last revision.
    case wrongLastRevision(key: String, description: String)
    case bucketNotFound(String)

    public static let streamNotFoundCode = 10059
    public static let streamNameInUseCode = 10058
    public static let wrongLastSequenceCode = 10071
    /// "wrong last sequence" without the sequence (nats-server 2.10 and later, clustered streams).
    public static let wrongLastSequenceConstantCode = 10164
    public static let noMessageFoundCode = 10037
    public static let consumerNotFoundCode = 10014
    /// "replicas > 1 not supported in non-clustered mode".
    public static let replicasNeedAClusterCode = 10074

    /// A publish refused because the stream (or subject) did not end where its expectation said.
    public var isWrongLastSequence: Bool {
        errorCode == Self.wrongLastSequenceCode || errorCode == Self.wrongLastSequenceConstantCode
    }

    public var errorCode: Int? {
        if case .api(_, let code, _) = self { return code }
        return nil
    }

    public var description: String {
        switch self {
        case .api(let status, let code, let d): "JetStream API error \(status)/\(code): \(d)"
        case .invalidResponse(let r): "invalid JetStream response: \(r)"
        case .invalidName(let n): "invalid name \(n.debugDescription)"
        case .invalidKey(let k): "invalid key \(k.debugDescription)"
        case .keyExists(let k, let r): "key \(k) exists at revision \(r)"
        case .wrongLastRevision(let k, let d): "wrong last revision for \(k): \(d)"
        case .bucketNotFound(let b): "bucket \(b) not found"
        }
    }
}

struct APIErrorBody: Decodable {
    var code: Int
    var errCode: Int?
    var description: String?
    enum CodingKeys: String, CodingKey { case code, errCode = "err_code", description }
}

struct APIErrorEnvelope: Decodable {
    var error: APIErrorBody?
}

/// Nanosecond durations as JSON integers.
extension KeyedDecodingContainer {
    func decodeDuration(_ key: Key) throws -> Duration {
        .nanoseconds(try decodeIfPresent(Int64.self, forKey: key) ?? 0)
    }
}

public enum RetentionPolicy: String, Codable, Sendable, Hashable {
    case limits, interest, workqueue
}

public enum StorageType: String, Codable, Sendable, Hashable {
    case file, memory
}

public enum DiscardPolicy: String, Codable, Sendable, Hashable {
    case old, new
}

/// A stream's configuration (`$JS.API.STREAM.CREATE` / `UPDATE`). Limits of `-1` mean unlimited.
public struct StreamConfig: Codable, Sendable, Hashable {
    public var name: String
    public var description: String?
    public var subjects: [String]
    public var retention: RetentionPolicy = .limits
    public var maxConsumers: Int = -1
    public var maxMessages: Int64 = -1
    public var maxBytes: Int64 = -1
    /// Zero keeps messages forever.
    public var maxAge: Duration = .zero
    public var maxMessagesPerSubject: Int64 = -1
    public var maxMessageSize: Int32 = -1
    public var storage: StorageType = .file
    public var discard: DiscardPolicy = .old
    public var replicas: Int = 1
    /// The window in which a repeated `Nats-Msg-Id` is recognised as a duplicate.
    public var duplicateWindow: Duration = .seconds(120)
    public var allowRollupHeaders = false
    public var denyDelete = false
    public var denyPurge = false
    public var allowDirect = false
    public var noAck = false

    public init(name: String, subjects: [String], replicas: Int = 1, storage: StorageType = .file) {
        self.name = name
        self.subjects = subjects
        self.replicas = replicas
        self.storage = storage
    }

    enum CodingKeys: String, CodingKey {
        case name, description, subjects, retention, maxConsumers = "max_consumers", maxMessages = "max_msgs"
        case maxBytes = "max_bytes", maxAge = "max_age", maxMessagesPerSubject = "max_msgs_per_subject"
        case maxMessageSize = "max_msg_size", storage, discard, replicas = "num_replicas"
        case duplicateWindow = "duplicate_window", allowRollupHeaders = "allow_rollup_hdrs"
        case denyDelete = "deny_delete", denyPurge = "deny_purge", allowDirect = "allow_direct", noAck = "no_ack"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        subjects = try c.decodeIfPresent([String].self, forKey: .subjects) ?? []
        retention = try c.decodeIfPresent(RetentionPolicy.self, forKey: .retention) ?? .limits
        maxConsumers = try c.decodeIfPresent(Int.self, forKey: .maxConsumers) ?? -1
        maxMessages = try c.decodeIfPresent(Int64.self, forKey: .maxMessages) ?? -1
        maxBytes = try c.decodeIfPresent(Int64.self, forKey: .maxBytes) ?? -1
        maxAge = try c.decodeDuration(.maxAge)
        maxMessagesPerSubject = try c.decodeIfPresent(Int64.self, forKey: .maxMessagesPerSubject) ?? -1
        maxMessageSize = try c.decodeIfPresent(Int32.self, forKey: .maxMessageSize) ?? -1
        storage = try c.decodeIfPresent(StorageType.self, forKey: .storage) ?? .file
        discard = try c.decodeIfPresent(DiscardPolicy.self, forKey: .discard) ?? .old
        replicas = try c.decodeIfPresent(Int.self, forKey: .replicas) ?? 1
        duplicateWindow = try c.decodeDuration(.duplicateWindow)
        allowRollupHeaders = try c.decodeIfPresent(Bool.self, forKey: .allowRollupHeaders) ?? false
        denyDelete = try c.decodeIfPresent(Bool.self, forKey: .denyDelete) ?? false
        denyPurge = try c.decodeIfPresent(Bool.self, forKey: .denyPurge) ?? false
        allowDirect = try c.decodeIfPresent(Bool.self, forKey: .allowDirect) ?? false
        noAck = try c.decodeIfPresent(Bool.self, forKey: .noAck) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(description, forKey: .description)
        try c.encode(subjects, forKey: .subjects)
        try c.encode(retention, forKey: .retention)
        try c.encode(maxConsumers, forKey: .maxConsumers)
        try c.encode(maxMessages, forKey: .maxMessages)
        try c.encode(maxBytes, forKey: .maxBytes)
        try c.encode(maxAge.nanoseconds, forKey: .maxAge)
        try c.encode(maxMessagesPerSubject, forKey: .maxMessagesPerSubject)
        try c.encode(maxMessageSize, forKey: .maxMessageSize)
        try c.encode(storage, forKey: .storage)
        try c.encode(discard, forKey: .discard)
        try c.encode(replicas, forKey: .replicas)
        try c.encode(duplicateWindow.nanoseconds, forKey: .duplicateWindow)
        try c.encode(allowRollupHeaders, forKey: .allowRollupHeaders)
        try c.encode(denyDelete, forKey: .denyDelete)
        try c.encode(denyPurge, forKey: .denyPurge)
        try c.encode(allowDirect, forKey: .allowDirect)
        try c.encode(noAck, forKey: .noAck)
    }
}

public struct StreamState: Decodable, Sendable, Hashable {
    public var messages: UInt64
    public var bytes: UInt64
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var consumerCount: Int

    enum CodingKeys: String, CodingKey {
        case messages, bytes, firstSequence = "first_seq", lastSequence = "last_seq", consumerCount = "consumer_count"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        messages = try c.decodeIfPresent(UInt64.self, forKey: .messages) ?? 0
        bytes = try c.decodeIfPresent(UInt64.self, forKey: .bytes) ?? 0
        firstSequence = try c.decodeIfPresent(UInt64.self, forKey: .firstSequence) ?? 0
        lastSequence = try c.decodeIfPresent(UInt64.self, forKey: .lastSequence) ?? 0
        consumerCount = try c.decodeIfPresent(Int.self, forKey: .consumerCount) ?? 0
    }
}

/// Raft group placement of a stream or consumer.
public struct ClusterInfo: Decodable, Sendable, Hashable {
    public struct Peer: Decodable, Sendable, Hashable {
        public var name: String
        public var current: Bool
        public var offline: Bool?
        public var lag: UInt64?
    }
    public var name: String?
    public var leader: String?
    public var replicas: [Peer]?
}

public struct StreamInfo: Decodable, Sendable, Hashable {
    public var config: StreamConfig
    public var state: StreamState
    public var cluster: ClusterInfo?
    public var created: String?

    /// Whether the stream's leader gave this answer, so that `state` holds everything the stream
    /// acknowledged. While a clustered stream has no leader, each of its servers that sees none
    /// answers with its own state, which may lag far behind (a server that missed appends while
    /// it was down): it names no leader then, or, if one was elected meanwhile, names it and lists
    /// it among the replicas (a server lists every replica but itself). The leader lists all the
    /// others, those down too; an answer listing fewer is from a server that does not know the
    /// stream's group yet, and it is not taken as the leader's whatever leader it names. A server
    /// without a cluster names itself and lists none.
    public var isFromLeader: Bool {
        guard let leader = cluster?.leader, !leader.isEmpty else { return false }
        let others = cluster?.replicas ?? []
        return !others.contains { $0.name == leader } && others.count == config.replicas - 1
    }
}

/// The acknowledgement of a JetStream publish.
public struct PubAck: Decodable, Sendable, Hashable {
    public var stream: String
    public var sequence: UInt64
    /// The `Nats-Msg-Id` was seen within the duplicate window; `sequence` is the original's.
    public var duplicate: Bool
    public var domain: String?

    enum CodingKeys: String, CodingKey { case stream, sequence = "seq", duplicate, domain }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stream = try c.decode(String.self, forKey: .stream)
        sequence = try c.decode(UInt64.self, forKey: .sequence)
        duplicate = try c.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
        domain = try c.decodeIfPresent(String.self, forKey: .domain)
    }
}

public struct AccountInfo: Decodable, Sendable, Hashable {
    public var memory: UInt64
    public var storage: UInt64
    public var streams: Int
    public var consumers: Int

    public init(from decoder: any Decoder) throws {
        enum K: String, CodingKey { case memory, storage, streams, consumers }
        let c = try decoder.container(keyedBy: K.self)
        memory = try c.decodeIfPresent(UInt64.self, forKey: .memory) ?? 0
        storage = try c.decodeIfPresent(UInt64.self, forKey: .storage) ?? 0
        streams = try c.decodeIfPresent(Int.self, forKey: .streams) ?? 0
        consumers = try c.decodeIfPresent(Int.self, forKey: .consumers) ?? 0
    }
}

/// Where a consumer starts.
public enum DeliverPolicy: Sendable, Hashable {
    case all
    case last
    case new
    case byStartSequence(UInt64)
    case lastPerSubject
}

public enum AckPolicy: String, Codable, Sendable, Hashable {
    case none, all, explicit
}

/// A consumer's configuration. Only set fields are sent.
public struct ConsumerConfig: Codable, Sendable, Hashable {
    /// A durable name makes the consumer survive inactivity; `nil` creates an ephemeral one.
    public var durableName: String?
    public var description: String?
    public var deliverPolicy: DeliverPolicy = .all
    public var ackPolicy: AckPolicy = .explicit
    public var ackWait: Duration?
    public var maxDeliver: Int?
    public var filterSubject: String?
    public var maxWaiting: Int?
    public var maxAckPending: Int?
    public var headersOnly: Bool?
    /// Ephemeral consumers are deleted after this long without activity.
    public var inactiveThreshold: Duration?
    public var replicas: Int?
    public var memoryStorage: Bool?

    public init(
        durableName: String? = nil, deliverPolicy: DeliverPolicy = .all, ackPolicy: AckPolicy = .explicit,
        filterSubject: String? = nil
    ) {
        self.durableName = durableName
        self.deliverPolicy = deliverPolicy
        self.ackPolicy = ackPolicy
        self.filterSubject = filterSubject
    }

    enum CodingKeys: String, CodingKey {
        case durableName = "durable_name", description, deliverPolicy = "deliver_policy"
        case optStartSeq = "opt_start_seq", ackPolicy = "ack_policy", ackWait = "ack_wait"
        case maxDeliver = "max_deliver", filterSubject = "filter_subject", replayPolicy = "replay_policy"
        case maxWaiting = "max_waiting", maxAckPending = "max_ack_pending", headersOnly = "headers_only"
        case inactiveThreshold = "inactive_threshold", replicas = "num_replicas", memoryStorage = "mem_storage"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(durableName, forKey: .durableName)
        try c.encodeIfPresent(description, forKey: .description)
        switch deliverPolicy {
        case .all: try c.encode("all", forKey: .deliverPolicy)
        case .last: try c.encode("last", forKey: .deliverPolicy)
        case .new: try c.encode("new", forKey: .deliverPolicy)
        case .lastPerSubject: try c.encode("last_per_subject", forKey: .deliverPolicy)
        case .byStartSequence(let seq):
            try c.encode("by_start_sequence", forKey: .deliverPolicy)
            try c.encode(seq, forKey: .optStartSeq)
        }
        try c.encode(ackPolicy, forKey: .ackPolicy)
        try c.encodeIfPresent(ackWait?.nanoseconds, forKey: .ackWait)
        try c.encodeIfPresent(maxDeliver, forKey: .maxDeliver)
        try c.encodeIfPresent(filterSubject, forKey: .filterSubject)
        try c.encode("instant", forKey: .replayPolicy)
        try c.encodeIfPresent(maxWaiting, forKey: .maxWaiting)
        try c.encodeIfPresent(maxAckPending, forKey: .maxAckPending)
        try c.encodeIfPresent(headersOnly, forKey: .headersOnly)
        try c.encodeIfPresent(inactiveThreshold?.nanoseconds, forKey: .inactiveThreshold)
        try c.encodeIfPresent(replicas, forKey: .replicas)
        try c.encodeIfPresent(memoryStorage, forKey: .memoryStorage)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        durableName = try c.decodeIfPresent(String.self, forKey: .durableName)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        switch try c.decodeIfPresent(String.self, forKey: .deliverPolicy) ?? "all" {
        case "last": deliverPolicy = .last
        case "new": deliverPolicy = .new
        case "last_per_subject": deliverPolicy = .lastPerSubject
        case "by_start_sequence":
            deliverPolicy = .byStartSequence(try c.decodeIfPresent(UInt64.self, forKey: .optStartSeq) ?? 0)
        default: deliverPolicy = .all
        }
        ackPolicy = try c.decodeIfPresent(AckPolicy.self, forKey: .ackPolicy) ?? .none
        ackWait = try c.decodeIfPresent(Int64.self, forKey: .ackWait).map { .nanoseconds($0) }
        maxDeliver = try c.decodeIfPresent(Int.self, forKey: .maxDeliver)
        filterSubject = try c.decodeIfPresent(String.self, forKey: .filterSubject)
        maxWaiting = try c.decodeIfPresent(Int.self, forKey: .maxWaiting)
        maxAckPending = try c.decodeIfPresent(Int.self, forKey: .maxAckPending)
        headersOnly = try c.decodeIfPresent(Bool.self, forKey: .headersOnly)
        inactiveThreshold = try c.decodeIfPresent(Int64.self, forKey: .inactiveThreshold).map { .nanoseconds($0) }
        replicas = try c.decodeIfPresent(Int.self, forKey: .replicas)
        memoryStorage = try c.decodeIfPresent(Bool.self, forKey: .memoryStorage)
    }
}

public struct ConsumerInfo: Decodable, Sendable, Hashable {
    public struct SequenceInfo: Decodable, Sendable, Hashable {
        public var consumerSequence: UInt64
        public var streamSequence: UInt64
        enum CodingKeys: String, CodingKey { case consumerSequence = "consumer_seq", streamSequence = "stream_seq" }
    }
    public var streamName: String
    public var name: String
    public var config: ConsumerConfig
    public var delivered: SequenceInfo?
    public var ackFloor: SequenceInfo?
    public var numPending: UInt64?
    public var numAckPending: Int?
    public var numWaiting: Int?
    public var cluster: ClusterInfo?

    enum CodingKeys: String, CodingKey {
        case streamName = "stream_name", name, config, delivered, ackFloor = "ack_floor"
        case numPending = "num_pending", numAckPending = "num_ack_pending", numWaiting = "num_waiting", cluster
    }
}

struct ConsumerCreateRequest: Encodable {
    var streamName: String
    var config: ConsumerConfig
    enum CodingKeys: String, CodingKey { case streamName = "stream_name", config }
}

struct PullRequest: Encodable {
    var batch: Int
    var expires: Int64
    var idleHeartbeat: Int64?
    var noWait: Bool?
    enum CodingKeys: String, CodingKey { case batch, expires, idleHeartbeat = "idle_heartbeat", noWait = "no_wait" }
}

struct MessageGetRequest: Encodable {
    var seq: UInt64?
    var lastBySubject: String?
    enum CodingKeys: String, CodingKey { case seq, lastBySubject = "last_by_subj" }
}

struct MessageGetResponse: Decodable {
    struct Stored: Decodable {
        var subject: String
        var seq: UInt64
        var hdrs: String?
        var data: String?
        var time: String?
    }
    var message: Stored
}

struct SuccessResponse: Decodable {
    var success: Bool?
}

/// A message stored in a stream.
public struct StreamMessage: Sendable, Hashable {
    public var subject: String
    /// The stream sequence.
    public var sequence: UInt64
    public var headers: NATSHeaders?
    public var payload: ByteBuffer
    /// Time the stream stored it, in nanoseconds since 1970, when known.
    public var timestampNanos: Int64?
    /// Messages left after this one for the consumer that delivered it (0 for direct gets).
    public var pending: UInt64

    public init(
        subject: String, sequence: UInt64, headers: NATSHeaders? = nil, payload: ByteBuffer,
        timestampNanos: Int64? = nil, pending: UInt64 = 0
    ) {
        self.subject = subject
        self.sequence = sequence
        self.headers = headers
        self.payload = payload
        self.timestampNanos = timestampNanos
        self.pending = pending
    }

    public var bytes: [UInt8] { Array(payload.readableBytesView) }
    public var string: String { String(buffer: payload) }
}

/// The metadata JetStream encodes in the reply subject of a delivered message:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<nanos>.<pending>` or the
/// longer form with domain and account hash after `$JS.ACK`.
public struct DeliveryMetadata: Sendable, Hashable {
    public var stream: String
    public var consumer: String
    public var delivered: UInt64
    public var streamSequence: UInt64
    public var consumerSequence: UInt64
    public var timestampNanos: Int64
    public var pending: UInt64
    public var domain: String?

    public init?(replySubject: String) {
        let t = replySubject.split(separator: ".", omittingEmptySubsequences: false)
        guard t.count >= 9, t[0] == "$JS", t[1] == "ACK" else { return nil }
        let o: Int
        if t.count == 9 {
            o = 2
            domain = nil
        } else if t.count >= 11 {
            o = 4
            domain = t[2] == "_" || t[2].isEmpty ? nil : String(t[2])
        } else {
            return nil
        }
        guard let delivered = UInt64(t[o + 2]), let sseq = UInt64(t[o + 3]), let cseq = UInt64(t[o + 4]),
            let ts = Int64(t[o + 5]), let pending = UInt64(t[o + 6])
        else { return nil }
        stream = String(t[o])
        consumer = String(t[o + 1])
        self.delivered = delivered
        streamSequence = sseq
        consumerSequence = cseq
        timestampNanos = ts
        self.pending = pending
    }
}

enum JSONCoding {
    static func encode<T: Encodable>(_ value: T) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return ByteBuffer(bytes: try encoder.encode(value))
    }

    /// Decodes an API answer, throwing its `error` if it has one.
    static func decodeResponse<T: Decodable>(_ type: T.Type, from message: NATSMessage) throws -> T {
        let data = Data(message.payload.readableBytesView)
        let decoder = JSONDecoder()
        if let envelope = try? decoder.decode(APIErrorEnvelope.self, from: data), let e = envelope.error {
            throw JetStreamError.api(status: e.code, errorCode: e.errCode ?? 0, description: e.description ?? "")
        }
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw JetStreamError.invalidResponse("\(error): \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
    }

    /// RFC 3339 with up to nanosecond fractions, as the server writes `time`.
    static func parseTimestamp(_ text: String) -> Int64? {
        // 2024-05-01T10:20:30.123456789Z
        var main = Substring(text)
        var fraction: Int64 = 0
        if let dot = text.firstIndex(of: ".") {
            let afterDot = text[text.index(after: dot)...]
            let digits = afterDot.prefix { $0.isNumber }
            let padded = (digits + String(repeating: "0", count: max(0, 9 - digits.count))).prefix(9)
            fraction = Int64(padded) ?? 0
            main = text[..<dot] + afterDot.dropFirst(digits.count)
        }
        let formatter = ISO8601DateFormatter()
        guard let date = formatter.date(from: String(main)) else { return nil }
        return Int64(date.timeIntervalSince1970) * 1_000_000_000 + fraction
    }
}
