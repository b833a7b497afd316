import Synchronization

/// The ownership a process proves in every write to shared state: one shard (the unit of
/// ownership; one shard per node today, many in hot-hot) and the epoch under which it holds it.
///
/// The election's driver calls `hold` when this process wins the shard and `release` when it
/// loses or resigns. Store adapters call `epochForWrite()` inside each write transaction and pass
/// the epoch to their fencing check (`SQLiteFencing`, `PostgresFencing`), so a write either
/// commits under the current owner's epoch or not at all. `nil` as the fence of a store means
/// "single process, no fencing".
public final class WriteFence: Sendable {
    /// The fenced resource, as the fencing table names it (e.g. `node/<shard>`).
    public let resource: String
    private let held = Mutex<Epoch?>(nil)

    public init(resource: String, epoch: Epoch? = nil) {
        self.resource = resource
        held.withLock { $0 = epoch }
    }

    /// This process owns the shard under `epoch` from now on.
    public func hold(_ epoch: Epoch) { held.withLock { $0 = epoch } }

    /// This process no longer owns the shard: every later write is refused before it reaches
    /// the database.
    public func release() { held.withLock { $0 = nil } }

    /// The epoch held now, if any.
    public var epoch: Epoch? { held.withLock { $0 } }

    /// The epoch a write must carry. Throws `CoordinationError.notOwner` while none is held.
    public func epochForWrite() throws(CoordinationError) -> Epoch {
        guard let epoch = held.withLock({ $0 }) else { throw .notOwner(resource: resource) }
        return epoch
    }
}
