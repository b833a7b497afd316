import Foundation
import HawserCore
import HawserWire
import JetStream
import Logging
import Notary
import Synchronization

/// The notary's `ReplicatedLog` on a JetStream stream (file storage, usually 3 replicas).
/// Positions are stream sequences. An append returns once JetStream acknowledges the entry, which
/// it does once a majority of the stream's servers stored it. Each append carries a `Nats-Msg-Id`
/// and is retried with it after a lost connection or acknowledgement, so it is stored once.
///
/// The connection is made on first use and kept; the NATS client reconnects across server
/// failures on its own. Call `close()` when the notary stops.
public final class JetStreamLog: ReplicatedLog, Sendable {
    public let configuration: JetStreamLogConfiguration
    private let logger: Logger
    private let connection = Mutex<Task<JetStreamContext, any Error>?>(nil)
    private let reader = ReaderSlot()
    /// The highest position this process has read or had acknowledged: the stream held it.
    private let seen = Mutex<UInt64>(0)
    /// An end before `seen` being asked again (`state`), shared by every caller.
    private let staleEnd = Mutex<StaleEndWatch?>(nil)
    /// Why the last connect failed, logged once per change (callers retry it often).
    private let connectProblem = Mutex<String?>(nil)
    /// The context once connected: every append and read asks for it, and need not wait on the
    /// connect task for it (a wait that can be cancelled costs a task of its own).
    private let connected = Mutex<JetStreamContext?>(nil)

    public init(configuration: JetStreamLogConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: ReplicatedLog

    public func append(_ payload: [UInt8], after last: UInt64) async throws {
        // The id makes a retry after a lost acknowledgement a duplicate, which JetStream answers
        // with the first copy's sequence. The expected last sequence makes the append
        // conditional: the stream's (its one subject's), except for the first entry, where the
        // stream's 0 means "not checked" and the subject's 0 means "no entry yet". The subject's
        // alone was never met again after a purge (the subject empty, the stream's sequence
        // kept): every request timed out while health said ready (found from outside).
        let id = randomUUID().uuidString
        let options = last == 0
            ? PublishOptions(messageID: id, expectedStream: configuration.stream, expectedLastSubjectSequence: 0)
            : PublishOptions(messageID: id, expectedStream: configuration.stream, expectedLastSequence: last)
        do {
            let sequence = try await retrying(for: configuration.appendTimeout, what: "append") { js, remaining in
                var options = options
                // A publish lost with a dying server is never answered: retry it soon.
                options.timeout = min(remaining, Self.attemptTimeout)
                return try await js.publish(self.configuration.subject, payload: payload, options: options).sequence
            }
            see(sequence)
            // nats-server 2.9 can store two concurrent appends that expect the same end. The one
            // stored later names a position that is not its own: replicas skip it as stale
            // (`LogChain.Verdict.stale`), and to its appender it is a conflict.
            guard sequence == last + 1 else { throw LogAppendConflict(expected: last) }
        } catch let error as JetStreamError where error.isWrongLastSequence {
            throw LogAppendConflict(expected: last)
        } catch NATSError.maxPayloadExceeded(let size, let limit) {
            throw APIError(.internalError, "a log entry of \(size) bytes exceeds the NATS servers' max_payload of \(limit); lower limits.maxRequestsPerLogEntry or raise max_payload")
        } catch let error as NATSError where Self.isTransient(error) {
            throw APIError(.timeout, "the log did not acknowledge the request within \(configuration.appendTimeout) (\(error)); it may still be decided: ask again with the same transaction id")
        }
    }

    public func read(after position: UInt64, limit: Int) async throws -> [LogEntry] {
        var current = reader.take()
        if current?.next != position + 1 {
            current = nil
            try await checkAvailable(after: position)
            let js = try await context()
            current = (position + 1, js.stream(configuration.stream).read(from: position + 1, batch: limit).makeAsyncIterator())
        }
        guard var (next, iterator) = current else { preconditionFailure("a reader was just made") }
        guard let batch = try await iterator.next(), let first = batch.first else { throw CancellationError() }
        if first.sequence != next {
            // Sequences of a stream without deletes have no gaps: the missing ones were removed by retention.
            throw JetStreamLogError.positionRemoved(position: next - 1, firstAvailable: first.sequence, stream: configuration.stream)
        }
        next = batch[batch.count - 1].sequence + 1
        see(next - 1)
        reader.put((next, iterator))
        return batch.map { LogEntry(position: $0.sequence, payload: $0.bytes) }
    }

    public func lastPosition(applied: UInt64) async throws -> UInt64 {
        try await state(applied: applied).lastSequence
    }

    public func entry(at position: UInt64) async throws -> LogEntry? {
        let message = try await retrying(for: .seconds(30), what: "get entry") { js, _ in
            try await js.getMessage(stream: self.configuration.stream, sequence: position)
        }
        return message.map { LogEntry(position: position, payload: Array($0.payload.readableBytesView)) }
    }

    /// The first position the stream still holds (entries before it were removed by retention).
    public func firstPosition() async throws -> UInt64 {
        try await state().firstSequence
    }

    /// Ends the connection; later calls fail.
    public func close() async {
        let task = connection.withLock { $0 }
        connected.withLock { $0 = nil }
        task?.cancel()
        if let js = try? await task?.value { await js.client.close() }
    }

    // MARK: Connection and retries

    private func see(_ position: UInt64) { seen.withLock { $0 = max($0, position) } }

    /// How long an end before a position this process has seen is asked again before it is
    /// believed (the stream did lose entries, or was made anew), and the longest gap between two
    /// answers that counts towards it (`StaleEndWatch`).
    static let staleEndBound = Duration.seconds(10)
    static let staleEndGap = Duration.seconds(2)

    /// The stream's state as its leader knows it, asked by a caller that applied through `applied`.
    private func state(applied: UInt64 = 0) async throws -> StreamState {
        // An end before a position this process has read, appended or applied is asked again;
        // only one that stays there for the bound is believed (`StaleEndWatch`).
        // The watch outlives this call: each caller gives up after its own time-out (an append's,
        // 10 s, no longer than the bound), and a watch started anew by each never reached it, so a
        // stream that had lost entries stalled every request while health said ready (found from
        // outside). Answers from every caller count towards one watch, the gap rule still
        // starting it again after a pause.
        let floor = max(seen.withLock { $0 }, applied)
        let clock = ContinuousClock()
        var asked = 0
        while true {
            let info = try await leadersInfo()
            let state = info.state
            let believed = staleEnd.withLock { stored in
                StaleEndWatch.shared(&stored, floor: floor, end: state.lastSequence, at: clock.now,
                                     bound: Self.staleEndBound, maxGap: Self.staleEndGap)
            }
            if state.lastSequence < floor {
                // Rare, and a stop may follow: the first such answer and the one believed are
                // logged with who gave them.
                let metadata: Logger.Metadata = [
                    "end": "\(state.lastSequence)", "seen": "\(floor)", "answers": "\(asked + 1)",
                    "leader": "\(info.cluster?.leader ?? "")", "replicas": "\(info.cluster?.replicas?.map(\.name) ?? [])",
                ]
                if believed {
                    logger.warning("JetStream stream info has ended before a position seen for the whole bound: the stream lost entries", metadata: metadata)
                } else {
                    logger.log(level: asked == 0 ? .notice : .debug, "JetStream stream info ends before a position seen; asking again", metadata: metadata)
                }
            }
            if believed { return state }
            asked += 1
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private func leadersInfo() async throws -> StreamInfo {
        // The stream exists (connecting made sure of it): "not found" comes from a server that has
        // just restarted and does not know it yet; asked again, another answers. A server that
        // answers while the stream has no leader gives its own state, which may end before
        // entries the replicas applied: only the leader's counts (`StreamInfo.isFromLeader`).
        try await retrying(for: .seconds(30), what: "stream info", alsoRetrying: JetStreamError.streamNotFoundCode) { js, _ in
            let info = try await js.streamInfo(self.configuration.stream)
            guard info.isFromLeader else { throw NoStreamLeader(stream: self.configuration.stream) }
            return info
        }
    }

    /// Refuses to read from a position the stream cannot continue.
    private func checkAvailable(after position: UInt64) async throws {
        // The caller applied `position`, which the stream held.
        let state = try await state(applied: position)
        if position > state.lastSequence {
            throw JetStreamLogError.aheadOfStream(position: position, streamEnd: state.lastSequence, stream: configuration.stream)
        }
        if state.firstSequence > 0 && position + 1 < state.firstSequence {
            throw JetStreamLogError.positionRemoved(position: position, firstAvailable: state.firstSequence, stream: configuration.stream)
        }
    }

    /// Runs `operation` until it succeeds, retrying transient failures (no stream leader during
    /// an election, a lost connection, and the JetStream error `alsoRetrying`) with back-off until
    /// `limit` has passed.
    private func retrying<T>(for limit: Duration, what: String, alsoRetrying code: Int? = nil,
                             _ operation: (JetStreamContext, Duration) async throws -> T) async throws -> T {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var backoff = Duration.milliseconds(20)
        while true {
            let remaining = deadline - clock.now
            do {
                return try await operation(try await context(), max(remaining, .milliseconds(50)))
            } catch let error as NATSError where Self.isTransient(error) && clock.now + backoff < deadline {
                logger.debug("JetStream \(what) failed; retrying", metadata: ["error": "\(error)"])
            } catch let error as JetStreamError where (error.isTransient || error.errorCode == code) && clock.now + backoff < deadline {
                logger.debug("JetStream \(what) failed; retrying", metadata: ["error": "\(error)"])
            } catch let error as NoStreamLeader where clock.now + backoff < deadline {
                logger.debug("JetStream \(what) failed; retrying", metadata: ["error": "\(error)"])
            }
            try await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .milliseconds(500))
        }
    }

    /// How long one publish waits for its acknowledgement before it is sent again (same id).
    static let attemptTimeout = Duration.seconds(2)

    static func isTransient(_ error: NATSError) -> Bool {
        error == .timeout || error == .noResponders || error == .reconnectBufferExceeded || error == .staleConnection
    }

    /// The connected JetStream context, connecting (and creating the stream) on first use.
    func context() async throws -> JetStreamContext {
        if let js = connected.withLock({ $0 }) { return js }
        let task = connection.withLock { current in
            if let current { return current }
            let made = Task { [self] in
                do {
                    let js = try await Self.connect(configuration, logger: logger)
                    self.connectProblem.withLock { $0 = nil }
                    return js
                } catch {
                    // The operator's one clue while the servers refuse the stream (replicas > 1
                    // on a server that is not clustered): `/health/ready` only says the replica
                    // has not caught up. (Servers that cannot be reached: the client logs that.)
                    let problem = "\(error)"
                    if self.connectProblem.withLock({ last in defer { last = problem }; return last != problem }), !(error is CancellationError) {
                        logger.error("cannot set up the log on JetStream; trying again", metadata: [
                            "servers": "\(configuration.servers)", "stream": "\(configuration.stream)", "problem": "\(problem)",
                        ])
                    }
                    throw error
                }
            }
            current = made
            return made
        }
        do {
            let js = try await value(of: task)
            connected.withLock { $0 = $0 ?? js }
            return js
        } catch is CancellationError where !task.isCancelled {
            throw CancellationError()  // this caller was cancelled; the connect goes on for the others
        } catch {
            // A failed connect is tried afresh by the next call.
            connection.withLock { if $0 == task { $0 = nil } }
            throw error
        }
    }

    private static func connect(_ configuration: JetStreamLogConfiguration, logger: Logger) async throws -> JetStreamContext {
        var options = NATSOptions(servers: configuration.servers, name: configuration.clientName,
                                  user: configuration.user, password: configuration.password, token: configuration.token)
        options.retryOnFailedInitialConnect = true
        options.pingInterval = .seconds(2)
        options.logger = logger
        // A replica's own reports are not worth receiving back; another process publishing
        // under its id (a second connection) is still heard, and found out (`Confirmations`).
        options.echo = false
        let client = try await NATSClient.connect(options)
        let js = JetStreamContext(client: client, timeout: .seconds(5))
        var stream = StreamConfig(name: configuration.stream, subjects: [configuration.subject],
                                  replicas: configuration.replicas, storage: .file)
        stream.description = "Hawser notary log"
        stream.maxMessages = configuration.maxEntries > 0 ? configuration.maxEntries : -1
        stream.maxBytes = configuration.maxBytes > 0 ? configuration.maxBytes : -1
        stream.maxAge = configuration.maxAge
        stream.duplicateWindow = configuration.duplicateWindow
        stream.discard = .old
        stream.denyDelete = true
        // Several replicas start at once; whichever creates the stream, the others see it exist.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while true {
            do {
                let info = try await ensure(stream, js)
                logger.info("JetStream log ready", metadata: [
                    "stream": "\(configuration.stream)", "first": "\(info.state.firstSequence)", "last": "\(info.state.lastSequence)",
                ])
                return js
            } catch let error as JetStreamError where error.isTransient && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
            } catch let error as NATSError where isTransient(error) && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
            } catch let error as JetStreamError where error.errorCode == JetStreamError.replicasNeedAClusterCode {
                await client.close()
                throw JetStreamLogError.replicasNeedACluster(replicas: configuration.replicas, stream: configuration.stream)
            } catch {
                await client.close()
                throw error
            }
        }
    }
}

extension JetStreamLog {
    /// Creates the stream, or finds it made with the same settings. One that exists with other
    /// settings the operator chose (`log.replicas`, the retention limits, the duplicate window)
    /// is not changed: a replica started with `replicas` 1 and `maxEntries` 2,000 silently cut a
    /// three-way stream to one server and dropped 5,355 entries (found from outside). Settings of
    /// Hawser's own (the description, deny-delete) are brought to this version's.
    static func ensure(_ wanted: StreamConfig, _ js: JetStreamContext) async throws -> StreamInfo {
        do {
            return try await js.createStream(wanted)
        } catch let error as JetStreamError where error.errorCode == JetStreamError.streamNameInUseCode {
            let found = try await js.streamInfo(wanted.name).config
            let differences = settingDifferences(wanted: wanted, found: found)
            guard differences.isEmpty else { throw JetStreamLogError.streamSettingsDiffer(stream: wanted.name, differences) }
            return try await js.updateStream(wanted)
        }
    }

    /// The operator's settings in which `found` differs from `wanted`, as `log.NAME: found, not wanted`.
    static func settingDifferences(wanted: StreamConfig, found: StreamConfig) -> [String] {
        func limit(_ value: Int64) -> String { value < 0 ? "none" : "\(value)" }
        func seconds(_ value: Duration) -> String { "\(value.components.seconds)" }
        var out = [String]()
        func compare(_ name: String, _ have: String, _ want: String) {
            if have != want { out.append("\(name): the stream has \(have), this replica \(want)") }
        }
        compare("log.replicas", "\(found.replicas)", "\(wanted.replicas)")
        compare("log.maxEntries", limit(found.maxMessages), limit(wanted.maxMessages))
        compare("log.maxBytes", limit(found.maxBytes), limit(wanted.maxBytes))
        compare("log.maxAgeSeconds", seconds(found.maxAge), seconds(wanted.maxAge))
        compare("log.duplicateWindowSeconds", seconds(found.duplicateWindow), seconds(wanted.duplicateWindow))
        compare("its subjects", found.subjects.joined(separator: ","), wanted.subjects.joined(separator: ","))
        return out
    }
}

/// A stream info answer from a server that does not lead the stream (retried until one does).
struct NoStreamLeader: Error, CustomStringConvertible {
    var stream: String
    var description: String { "stream \(stream) has no leader (a server that does not lead it answered with its own state)" }
}

extension JetStreamError {
    /// Server-side failures an election or restart fixes (no leader, cluster not ready).
    var isTransient: Bool {
        if case .api(let status, let code, _) = self {
            // A server that is not clustered answers 500 to a replicated stream: no retry helps.
            return (status >= 500 && code != Self.replicasNeedAClusterCode) || code == 10008 || code == 10023 || code == 10058
        }
        return false
    }
}

/// The ordered reader that continues where the last `read` stopped. Only the replica's apply loop
/// reads, one call at a time; a concurrent caller simply gets a reader of its own.
private final class ReaderSlot: @unchecked Sendable {
    // @unchecked: `lock` guards `value`; the iterator is used by one task at a time (taken out, put back).
    private let lock = NSLock()
    private var value: (next: UInt64, iterator: StreamReader.AsyncIterator)?

    func take() -> (next: UInt64, iterator: StreamReader.AsyncIterator)? {
        lock.withLock {
            defer { value = nil }
            return value
        }
    }

    func put(_ new: (next: UInt64, iterator: StreamReader.AsyncIterator)) {
        lock.withLock { value = new }
    }
}
