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
/// The one write made after `release` is the cleanup of the term that is ending
/// (`epochForCleanup`): it carries the released epoch, so the database still refuses it once a
/// newer owner has claimed.
public final class WriteFence: Sendable {
    /// The fenced resource, as the fencing table names it (e.g. `node/<shard>`).
    public let resource: String
    private struct Held {
        var now: Epoch?
        /// The epoch held last, also after `release`: that of the term that is ending.
        var last: Epoch?
    }
    private let held = Mutex(Held())

    public init(resource: String, epoch: Epoch? = nil) {
        self.resource = resource
        held.withLock { $0 = Held(now: epoch, last: epoch) }
    }

    /// This process owns the shard under `epoch` from now on.
    public func hold(_ epoch: Epoch) { held.withLock { $0 = Held(now: epoch, last: epoch) } }

    /// This process no longer owns the shard: every later write is refused before it reaches
    /// the database, but for the ending term's cleanup (`epochForCleanup`).
    public func release() { held.withLock { $0.now = nil } }

    /// The epoch held now, if any.
    public var epoch: Epoch? { held.withLock { $0.now } }

    /// The epoch a write must carry. Throws `CoordinationError.notOwner` while none is held.
    public func epochForWrite() throws(CoordinationError) -> Epoch {
        guard let epoch = held.withLock({ $0.now }) else { throw .notOwner(resource: resource) }
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

    /// The epoch of the cleanup a term makes once its work has stopped (a flow engine clearing
    /// the replay markers of the flows it stopped): the epoch held now, else the one held last.
    /// A process that steps down releases the fence before its work stops, so that no write of
    /// that work commits; what the stopped work leaves behind is then written under the term's
    /// own epoch, which the database accepts unless a newer owner has claimed it since.
    /// Throws `CoordinationError.notOwner` if no epoch was ever held.
    public func epochForCleanup() throws(CoordinationError) -> Epoch {
        guard let epoch = held.withLock({ $0.now ?? $0.last }) else { throw .notOwner(resource: resource) }
        return epoch
    }
}
