import Synchronization

/// The ownership a process proves in every write to shared state: one shard (the unit of
/// ownership; one shard per node today, many in hot-hot) and the epoch under which it holds it.
///
/// The election's driver calls `hold` when this process wins the shard and `release` when it
/// loses or resigns. Store adapters call `epochForWrite()` inside each write transaction and pass
/// the epoch to their fencing check (`SQLiteFencing`, `PostgresFencing`), so a write either
/// commits under the current owner's epoch or not at all. `nil` as the fence of a store means
/// "single process, no fencing".
///
/// A term that ends releases its fence before its work stops. What the stopped work leaves behind
/// (a flow engine clearing its replay markers) is no ledger state and goes unfenced
/// (`FlowStore.clearReplayMarkers`).
public final class WriteFence: Sendable {
    /// The fenced resource, as the fencing table names it (e.g. `node/<shard>`).
    public let resource: String
    private let held: Mutex<Epoch?>

    public init(resource: String, epoch: Epoch? = nil) {
        self.resource = resource
        held = Mutex(epoch)
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

    /// Whether the epoch held still owns the shard, given the epoch the database records for it:
    /// throws `CoordinationError.staleEpoch` once a newer owner has recorded a higher one
    /// (`notOwner` while none is held). For a process that holds its epoch for life (hot-cold),
    /// which hears of a newer owner from no election, only from the database.
    public func checkRecorded(_ recorded: Epoch?) throws(CoordinationError) {
        let epoch = try epochForWrite()
        if let recorded, recorded > epoch { throw .staleEpoch(resource: resource, presented: epoch, current: recorded) }
    }
}
