import Coordination
import GRDB

/// The fencing check inside a SQLite write transaction: refuses a write whose epoch is lower than
/// the highest one this database has seen for the resource, and records a higher one. Because it
/// runs in the same transaction as the write, a stale leader's write is refused as a whole.
///
/// A new leader claims its epoch (`claim`) before it writes anything else, so that the store
/// knows the new epoch before the old leader could write again.
public enum SQLiteFencing {
    public static func createTable(_ db: Database) throws {
        try db.execute(sql: "CREATE TABLE IF NOT EXISTS hawser_fence (resource TEXT PRIMARY KEY, epoch INTEGER NOT NULL)")
    }

    /// Call first in the transaction of the write. Throws `CoordinationError.staleEpoch`.
    public static func check(_ db: Database, resource: String, epoch: Epoch) throws {
        try record(db, resource: resource, epoch: epoch, equalPasses: true)
    }

    /// A new owner's claim, in a write transaction of its own: records `epoch` only if it is higher
    /// than the one recorded, and throws `CoordinationError.staleEpoch` otherwise. An equal epoch
    /// is refused too: it was claimed already, by another process (the same number from another
    /// election) or by this one in an earlier attempt; the term must not begin on it.
    public static func claim(_ db: Database, resource: String, epoch: Epoch) throws {
        try record(db, resource: resource, epoch: epoch, equalPasses: false)
    }

    /// Refuses `epoch` below the recorded one (and equal to it, unless `equalPasses`), records a higher one.
    private static func record(_ db: Database, resource: String, epoch: Epoch, equalPasses: Bool) throws {
        let current = try currentEpoch(db, resource: resource)
        if let current, current > epoch || (current == epoch && !equalPasses) {
            throw CoordinationError.staleEpoch(resource: resource, presented: epoch, current: current)
        }
        if current != epoch {
            try db.execute(sql: "INSERT INTO hawser_fence (resource, epoch) VALUES (?, ?) ON CONFLICT (resource) DO UPDATE SET epoch = excluded.epoch",
                           arguments: [resource, Int64(epoch.value)])
        }
    }

    /// The check of a store's fence (nil: an unfenced, single-process store). Throws
    /// `CoordinationError.notOwner` while the fence holds no epoch, `.staleEpoch` as above.
    public static func check(_ db: Database, _ fence: WriteFence?) throws {
        guard let fence else { return }
        try check(db, resource: fence.resource, epoch: fence.epochForWrite())
    }

    /// The highest epoch seen for the resource.
    public static func currentEpoch(_ db: Database, resource: String) throws -> Epoch? {
        try Int64.fetchOne(db, sql: "SELECT epoch FROM hawser_fence WHERE resource = ?", arguments: [resource]).map { Epoch(UInt64($0)) }
    }
}
