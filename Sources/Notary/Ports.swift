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

/// A durable, totally ordered log. Every replica that reads it sees the same entries in the same
/// order. Implemented by the embedded SQLite log and by a JetStream stream. Called from the
/// appender's and the replica's own threads, which an implementation may block.
public protocol ReplicatedLog: Sendable {
    /// Appends one entry and returns its position, only once the entry is durable
    /// (fsynced for the embedded log, stored on a majority for a replicated one).
    func append(_ payload: [UInt8]) async throws -> UInt64

    /// Up to `limit` entries after `position`, in order. Waits until at least one exists.
    func read(after position: UInt64, limit: Int) async throws -> [LogEntry]

    /// The position of the last durable entry (0 when empty).
    func lastPosition() async throws -> UInt64
}

/// A replica's own database of spent states and outcomes.
public protocol NotaryStore: Sendable {
    /// The last log position whose effects are committed (0 for a new store).
    func appliedPosition() async throws -> UInt64

    /// Applies one batch in one transaction: reads the persisted facts about `refs` and `txIds`,
    /// hands them to `decide`, and commits the new spent states and outcomes it returns together
    /// with `position`. A ref spent twice is refused and nothing is committed. Called from the
    /// replica's own thread, which an implementation may block.
    func apply(through position: UInt64, refs: [StateRef], txIds: [SecureHash],
               decide: @escaping @Sendable (UniquenessView) -> BatchDecision) async throws -> BatchDecision

    /// The recorded outcome of a transaction, if it has one.
    func outcome(of txId: SecureHash) async throws -> NotarisationOutcome?

    /// SHA-256 over every spent state and outcome in key order: equal on replicas in the same state.
    func digest() async throws -> SecureHash
}
