import HawserCore
import Uniqueness

/// One entry of a `ReplicatedLog`: its position (1, 2, 3, ...) and its opaque bytes.
public struct LogEntry: Sendable, Equatable {
    public var position: UInt64
    public var payload: [UInt8]

    public init(position: UInt64, payload: [UInt8]) {
        self.position = position
        self.payload = payload
    }
}

/// A durable, totally ordered log. Implemented by the embedded SQLite log and by a JetStream
/// stream. Replicas do not trust it to be either: they verify the chain its entries carry
/// (`LogChain`). Called from the appender's and the replica's own threads, which an
/// implementation may block.
public protocol ReplicatedLog: Sendable {
    /// Appends one entry at position `last + 1`, only if `last` is the log's last position, and
    /// returns once the entry is durable (fsynced for the embedded log, stored on a majority for a
    /// replicated one). Throws `LogAppendConflict` when the log ends elsewhere; nothing was
    /// appended then, unless this very entry was appended by an earlier attempt.
    func append(_ payload: [UInt8], after last: UInt64) async throws

    /// Up to `limit` entries after `position`, in order. Waits until at least one exists.
    func read(after position: UInt64, limit: Int) async throws -> [LogEntry]

    /// The position of the last durable entry (0 when empty), asked by a caller that has applied
    /// the log through `applied`. A log whose servers may answer for a while with an end they have
    /// not caught up to (JetStream) asks again while the end is before `applied`, up to a bound:
    /// a replica that believed such an end would stop with `log_diverged` (`truncated`).
    func lastPosition(applied: UInt64) async throws -> UInt64

    /// The entry at `position` if the log still holds it and can fetch one entry by itself; nil
    /// otherwise (removed by retention, or a log that cannot tell). Does not wait.
    func entry(at position: UInt64) async throws -> LogEntry?
}

extension ReplicatedLog {
    public func entry(at position: UInt64) async throws -> LogEntry? { nil }

    /// The position of the last durable entry, asked by a caller that has applied nothing of it.
    public func lastPosition() async throws -> UInt64 { try await lastPosition(applied: 0) }
}

/// The log did not end at the position an append expected: another replica appended meanwhile.
public struct LogAppendConflict: Error, Sendable, Equatable {
    public var expected: UInt64
    public init(expected: UInt64) { self.expected = expected }
}

/// A batch applied to a store: its decisions, and the chain heads it passes through, one per log
/// position it consumes (the last is the store's new head).
public struct AppliedBatch: Sendable {
    public var decision: BatchDecision
    public var heads: [ChainHead]

    public init(decision: BatchDecision, heads: [ChainHead]) {
        precondition(!heads.isEmpty, "a batch consumes at least one position")
        self.decision = decision
        self.heads = heads
    }

    public var head: ChainHead { heads[heads.count - 1] }
}

/// A replica's own database of spent states and outcomes.
public protocol NotaryStore: Sendable {
    /// The chain head whose effects are committed (`ChainHead.genesis` for a new store). Throws
    /// for a store written before the verified log, which holds a position but no chain.
    func head() async throws -> ChainHead

    /// Applies one batch in one transaction: reads the persisted facts about `refs` and `txIds`,
    /// hands them to `decide`, and commits the new spent states and outcomes it returns together
    /// with its head. A ref spent twice is refused and nothing is committed. Called from the
    /// replica's own thread, which an implementation may block.
    func apply(refs: [StateRef], txIds: [SecureHash],
               decide: @escaping @Sendable (UniquenessView) -> AppliedBatch) async throws -> AppliedBatch

    /// The recorded outcome of a transaction, if it has one.
    func outcome(of txId: SecureHash) async throws -> NotarisationOutcome?

    /// SHA-256 over every spent state and outcome in key order: equal on replicas in the same state.
    func digest() async throws -> SecureHash
}

/// How the replicas of one notary reach each other: reports to all, and batches forwarded to the
/// sequencer. Messages are opaque bytes here (authenticated by `ReplicaCodec`); delivery is best
/// effort, and nothing depends on it for safety, only for progress.
public protocol ReplicaLink: Sendable {
    /// Sends a report to every replica.
    func publish(report: [UInt8]) async throws

    /// Reports from every replica (this one's too), until the task is cancelled.
    func reports() async throws -> AsyncThrowingStream<[UInt8], any Error>

    /// Sends a forwarded batch to replica `replica` and returns its reply, or throws if none
    /// comes within `timeout` (or nobody serves that replica).
    func forward(_ batch: [UInt8], to replica: String, timeout: Duration) async throws -> [UInt8]

    /// Answers batches forwarded to replica `replica` with `handle`, until the task is cancelled.
    func serveForwards(as replica: String, _ handle: @escaping @Sendable ([UInt8]) async -> [UInt8]) async throws
}
