import Coordination
import HawserCore
import HawserWire

/// The appender's decisions, without I/O: where a group of requests goes (appended here or
/// forwarded to the sequencer), the entry it becomes (named by its position and predecessor on
/// the chain this replica verified), what a conflict or a failed append means for where the next
/// entry goes, when the log has lost entries this replica applied (`log_diverged`), and how long
/// to wait before trying again. `LogAppender` and the simulator (`NotaryClusterSim`) drive it.
public struct AppenderCore: Sendable {
    /// Where this replica's next entry goes: after `position`, whose entry hashes to `entryHash`.
    public struct Tail: Sendable, Hashable {
        public var position: UInt64
        public var entryHash: SecureHash
    }

    /// An entry built for position `after + 1`.
    public struct Entry: Sendable {
        public var payload: [UInt8]
        public var hash: SecureHash
        public var after: UInt64
        public var position: UInt64 { after + 1 }

        /// Whether this entry is in the log, judged by this replica's head at its position
        /// (an earlier attempt may have landed before its answer was lost).
        public func landed(_ head: ChainHead?) -> Bool { head?.entryHash == hash }
    }

    public enum Target: Sendable, Equatable {
        case here
        case forward(String)
        /// No member can append now.
        case nobody
    }

    /// What to do about where the log ends (`resync`).
    public enum Resync: Sendable, Equatable {
        /// Wait until this replica has applied `through` and a majority confirmed its head, then
        /// take the head as the tail (`caughtUp`).
        case catchUp(through: UInt64)
        /// The log lost entries this replica applied: it stops (the evidence), the group fails.
        case diverged(LogBreak)
    }

    public let me: String
    private let codec: ReplicaCodec
    /// Nil until learnt from this replica's head, and again after a failure (the append may have landed).
    public private(set) var tail: Tail?

    public init(me: String, codec: ReplicaCodec) {
        self.me = me
        self.codec = codec
    }

    /// Forwarded requests are appended here whoever this replica thinks sequences.
    public func target(forwarded: Bool, sequencer: String?) -> Target {
        let target = forwarded ? me : sequencer
        guard let target else { return .nobody }
        return target == me ? .here : .forward(target)
    }

    /// The entry for `requests` at the tail, stamped `time`. The tail must be known.
    public func entry(_ requests: [NotarisationRequest], time: Instant) -> Entry {
        let tail = tail!
        let payload = codec.entry(requests, time: time, position: tail.position + 1, previous: tail.entryHash, sequencer: me)
        return Entry(payload: payload, hash: SecureHash.sha256(payload), after: tail.position)
    }

    public mutating func appended(_ entry: Entry) {
        tail = Tail(position: entry.position, entryHash: entry.hash)
    }

    /// A try failed in a way that may have appended: learn the log's end again before the next.
    public mutating func forget() { tail = nil }

    /// The log ends at `logEnd`; this replica has applied through `applied`.
    public static func resync(logEnd: UInt64, applied: ChainHead) -> Resync {
        // Entries this replica applied (and may have confirmed) are gone from the log:
        // appending now would give their positions to other entries.
        if logEnd < applied.position { return .diverged(.truncated(end: logEnd, head: applied)) }
        return .catchUp(through: logEnd)
    }

    /// This replica caught up with the log: its head is where the next entry goes, once a
    /// majority confirmed it (`confirmed`, from `Confirmations`). A head only this replica
    /// holds (its log server served it another entry) would put a fork into the others' log and
    /// stop them all; this replica waits instead, and is outvoted. Returns whether the tail is set.
    public mutating func caughtUp(_ head: ChainHead, confirmed: UInt64) -> Bool {
        guard head.position <= confirmed else { return false }
        tail = Tail(position: head.position, entryHash: head.entryHash)
        return true
    }

    /// An error that ends the group's tries at once, nil if another try may fix it.
    public static func fatal(_ error: any Error) -> APIError? {
        if let error = error as? APIError, !error.code.isRetryable { return error }
        if error is CancellationError { return shuttingDown }
        return nil
    }

    /// The group's tries: back off 10 ms, doubling up to 200 ms, until `timeout` has passed.
    public struct Retry: Sendable {
        public enum Next: Sendable { case wait(Duration), giveUp(APIError) }
        public let timeout: Duration
        public private(set) var backoff = Duration.milliseconds(10)

        public init(timeout: Duration) { self.timeout = timeout }

        /// After a try `elapsed` into the group that failed with `error` (retryable), or that
        /// found no member to append (`error` nil).
        public mutating func next(after error: (any Error)?, elapsed: Duration) -> Next {
            if elapsed + backoff >= timeout {
                if let error { return .giveUp(AppenderCore.timedOut(error, within: timeout)) }
                return .giveUp(APIError(.noQuorum, "no replica could append to the log within \(timeout): fewer than a majority of the replicas are ready"))
            }
            defer { backoff = min(backoff * 2, .milliseconds(200)) }
            return .wait(backoff)
        }
    }

    public static let shuttingDown = APIError(.shuttingDown, "the notary is shutting down; send the request to another replica or retry")

    /// `error`, the last try's within the append time-out `timeout`, which a retry could have
    /// fixed, as the time-out it became; a time-out already (the sequencer's, forwarded back) as
    /// it is. The last try had only what was left of `timeout`, which its own error may quote.
    public static func timedOut(_ error: any Error, within timeout: Duration) -> APIError {
        if let error = error as? APIError, error.code == .timeout { return error }
        // A try cut by its deadline says only that (it is no coordination store's failure).
        var last = "\(error)"
        if case .unavailable(let what) = error as? CoordinationError { last = what }
        return APIError(.timeout, "the log did not take the request in the \(timeout) its tries may take (the last try, in the time left: \(last)); "
                        + "it may still be decided: ask again with the same transaction id")
    }

    /// Requests that waited `limit` behind others and were never sent to the log.
    public static func timedOut(waitingFor limit: Duration) -> APIError {
        APIError(.timeout, "the log did not take the request in time (it waited \(limit) behind others for the log); it may still be decided: ask again with the same transaction id")
    }

    public static func diverged(_ evidence: LogBreak) -> APIError {
        APIError(.logDiverged, "this replica stopped signing: \(evidence); send the request to another replica")
    }
}
