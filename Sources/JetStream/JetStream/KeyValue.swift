import NIOCore

/// Configuration of a key-value bucket (stored as the stream `KV_<bucket>` on `$KV.<bucket>.>`).
public struct KeyValueConfig: Sendable, Hashable {
    public var bucket: String
    public var description: String?
    /// Values kept per key (1...64).
    public var history: Int
    /// Zero keeps values forever.
    public var ttl: Duration
    public var maxBytes: Int64
    public var maxValueSize: Int32
    public var storage: StorageType
    public var replicas: Int

    public init(
        bucket: String, history: Int = 1, ttl: Duration = .zero, maxBytes: Int64 = -1, maxValueSize: Int32 = -1,
        storage: StorageType = .file, replicas: Int = 1
    ) {
        self.bucket = bucket
        self.history = history
        self.ttl = ttl
        self.maxBytes = maxBytes
        self.maxValueSize = maxValueSize
        self.storage = storage
        self.replicas = replicas
    }

    var streamConfig: StreamConfig {
        var c = StreamConfig(name: "KV_\(bucket)", subjects: ["$KV.\(bucket).>"], replicas: replicas, storage: storage)
        c.description = description
        c.maxMessagesPerSubject = Int64(history)
        c.maxBytes = maxBytes
        c.maxAge = ttl
        c.maxMessageSize = maxValueSize
        c.discard = .new
        c.allowRollupHeaders = true
        c.denyDelete = true
        c.allowDirect = true
        c.duplicateWindow = ttl > .zero && ttl < .seconds(120) ? ttl : .seconds(120)
        return c
    }
}

/// What a key-value entry records.
public enum KeyValueOperation: String, Sendable, Hashable {
    case put = "PUT"
    case delete = "DEL"
    case purge = "PURGE"
}

/// One revision of a key.
public struct KeyValueEntry: Sendable, Hashable {
    public var bucket: String
    public var key: String
    public var value: ByteBuffer
    /// The stream sequence of this revision.
    public var revision: UInt64
    public var operation: KeyValueOperation
    /// For watched entries: how many newer entries the watcher still has to deliver (0 = caught up).
    public var delta: UInt64
    public var timestampNanos: Int64?

    public var bytes: [UInt8] { Array(value.readableBytesView) }
    public var string: String { String(buffer: value) }
}

extension JetStreamContext {
    /// Creates a bucket (or returns the existing one with the same configuration).
    public func createKeyValue(_ config: KeyValueConfig) async throws -> KeyValue {
        try KeyValue.validateBucket(config.bucket)
        guard (1...64).contains(config.history) else { throw JetStreamError.invalidName("history \(config.history)") }
        _ = try await createStream(config.streamConfig)
        return KeyValue(context: self, bucket: config.bucket)
    }

    /// Binds to an existing bucket; throws ``JetStreamError/bucketNotFound(_:)`` if there is none.
    public func keyValue(_ bucket: String) async throws -> KeyValue {
        try KeyValue.validateBucket(bucket)
        do {
            _ = try await streamInfo("KV_\(bucket)")
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNotFoundCode {
            throw JetStreamError.bucketNotFound(bucket)
        }
        return KeyValue(context: self, bucket: bucket)
    }

    public func deleteKeyValue(_ bucket: String) async throws {
        try KeyValue.validateBucket(bucket)
        try await deleteStream("KV_\(bucket)")
    }
}

/// A key-value bucket. Keys are `[-/_=.a-zA-Z0-9]+`, not starting or ending with `.`.
/// Revisions are stream sequences; compare-and-set works with ``create(_:value:)`` and
/// ``update(_:value:revision:)``.
public struct KeyValue: Sendable {
    public let context: JetStreamContext
    public let bucket: String

    var streamName: String { "KV_\(bucket)" }
    var prefix: String { "$KV.\(bucket)." }

    static func validateBucket(_ bucket: String) throws {
        let ok = !bucket.isEmpty && bucket.utf8.allSatisfy { isAlphaNumeric($0) || $0 == 95 || $0 == 45 }
        if !ok { throw JetStreamError.invalidName(bucket) }
    }

    static func validateKey(_ key: String, wildcards: Bool = false) throws {
        let ok =
            !key.isEmpty && !key.hasPrefix(".") && !key.hasSuffix(".")
            && key.utf8.allSatisfy {
                isAlphaNumeric($0) || $0 == 45 || $0 == 47 || $0 == 95 || $0 == 61 || $0 == 46
                    || (wildcards && ($0 == 42 || $0 == 62))
            }
        if !ok { throw JetStreamError.invalidKey(key) }
    }

    private static func isAlphaNumeric(_ b: UInt8) -> Bool {
        (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b)
    }

    /// The current value, or `nil` if the key was never set, was deleted or purged.
    public func get(_ key: String) async throws -> KeyValueEntry? {
        guard let entry = try await lastEntry(key), entry.operation == .put else { return nil }
        return entry
    }

    /// The latest entry including delete markers.
    func lastEntry(_ key: String) async throws -> KeyValueEntry? {
        try Self.validateKey(key)
        guard let m = try await context.getLastMessage(stream: streamName, subject: prefix + key) else { return nil }
        return entry(from: m, delta: 0)
    }

    /// Sets the value; returns the new revision.
    @discardableResult
    public func put(_ key: String, value: ByteBuffer) async throws -> UInt64 {
        try Self.validateKey(key)
        return try await context.publish(prefix + key, payload: value).sequence
    }

    /// Sets the value only if the key has no live value; throws ``JetStreamError/keyExists(key:revision:)``.
    @discardableResult
    public func create(_ key: String, value: ByteBuffer) async throws -> UInt64 {
        do {
            return try await update(key, value: value, revision: 0)
        } catch JetStreamError.wrongLastRevision {
            // A deleted or purged key may be created again: update on top of the marker.
            guard let last = try await lastEntry(key) else { throw JetStreamError.keyExists(key: key, revision: 0) }
            if last.operation == .put { throw JetStreamError.keyExists(key: key, revision: last.revision) }
            do {
                return try await update(key, value: value, revision: last.revision)
            } catch JetStreamError.wrongLastRevision {
                let now = try await lastEntry(key)
                throw JetStreamError.keyExists(key: key, revision: now?.revision ?? 0)
            }
        }
    }

    /// Sets the value only if the key's latest revision is `revision`; throws
    /// ``JetStreamError/wrongLastRevision(key:description:)`` otherwise.
    @discardableResult
    public func update(_ key: String, value: ByteBuffer, revision: UInt64) async throws -> UInt64 {
        try Self.validateKey(key)
        do {
            return try await context.publish(
                prefix + key, payload: value, options: PublishOptions(expectedLastSubjectSequence: revision)
            ).sequence
        } catch JetStreamError.api(_, let code, let description) where code == JetStreamError.wrongLastSequenceCode {
            throw JetStreamError.wrongLastRevision(key: key, description: description)
        }
    }

    /// Writes a delete marker (history is kept). With `revision`, only if that is the latest.
    @discardableResult
    public func delete(_ key: String, revision: UInt64? = nil) async throws -> UInt64 {
        try await marker(key, .delete, revision: revision)
    }

    /// Writes a purge marker and removes the key's older revisions.
    @discardableResult
    public func purge(_ key: String, revision: UInt64? = nil) async throws -> UInt64 {
        try await marker(key, .purge, revision: revision)
    }

    private func marker(_ key: String, _ operation: KeyValueOperation, revision: UInt64?) async throws -> UInt64 {
        try Self.validateKey(key)
        var headers = NATSHeaders()
        headers[NATSHeaderName.kvOperation] = operation.rawValue
        if operation == .purge { headers[NATSHeaderName.rollup] = "sub" }
        do {
            return try await context.publish(
                prefix + key, headers: headers, options: PublishOptions(expectedLastSubjectSequence: revision)
            ).sequence
        } catch JetStreamError.api(_, let code, let description) where code == JetStreamError.wrongLastSequenceCode {
            throw JetStreamError.wrongLastRevision(key: key, description: description)
        }
    }

    @discardableResult
    public func put(_ key: String, value: String) async throws -> UInt64 {
        try await put(key, value: ByteBuffer(string: value))
    }

    @discardableResult
    public func put(_ key: String, value: [UInt8]) async throws -> UInt64 {
        try await put(key, value: ByteBuffer(bytes: value))
    }

    /// Watches keys (`>` for all, `*` and `>` wildcards allowed): first the latest entry of each
    /// matching key (or their whole history), then every change, delete markers included. An
    /// entry with `delta == 0` means the watcher has caught up. `updatesOnly` skips existing values.
    public func watch(_ keys: String = ">", includeHistory: Bool = false, updatesOnly: Bool = false) throws
        -> KeyValueWatcher
    {
        try Self.validateKey(keys, wildcards: true)
        let start: DeliverPolicy = updatesOnly ? .new : (includeHistory ? .all : .lastPerSubject)
        let reader = StreamReader(
            context: context, stream: streamName, filterSubject: prefix + keys, start: start, batch: 256,
            expires: .seconds(5))
        return KeyValueWatcher(bucket: self, reader: reader)
    }

    func entry(from m: StreamMessage, delta: UInt64) -> KeyValueEntry {
        let op = m.headers?[NATSHeaderName.kvOperation].flatMap(KeyValueOperation.init(rawValue:)) ?? .put
        return KeyValueEntry(
            bucket: bucket, key: String(m.subject.dropFirst(prefix.utf8.count)), value: m.payload,
            revision: m.sequence, operation: op, delta: delta, timestampNanos: m.timestampNanos)
    }
}

/// The entries of a key-value watch; see ``KeyValue/watch(_:includeHistory:updatesOnly:)``.
public struct KeyValueWatcher: AsyncSequence, Sendable {
    public typealias Element = KeyValueEntry
    let bucket: KeyValue
    let reader: StreamReader

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(bucket: bucket, reader: reader.makeAsyncIterator())
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let bucket: KeyValue
        var reader: StreamReader.AsyncIterator
        var buffered: [StreamMessage] = []

        public mutating func next() async throws -> KeyValueEntry? {
            while buffered.isEmpty {
                guard let batch = try await reader.next() else { return nil }
                buffered = batch.reversed()
            }
            let m = buffered.removeLast()
            return bucket.entry(from: m, delta: m.pending)
        }
    }
}
