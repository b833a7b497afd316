import Coordination
import Logging
import PostgresNIO

/// The fencing check inside a PostgreSQL transaction: refuses a write whose epoch is lower than
/// the highest one seen for the resource, and records a higher one. The upsert locks the row, so
/// fenced writers to one resource are serialised until their transactions end; a stale leader's
/// transaction fails as a whole.
///
/// A new leader claims its epoch (`claim`) before it writes anything else.
public enum PostgresFencing {
    /// The fencing table, for schemas that include it.
    public static let tableDefinition = "CREATE TABLE IF NOT EXISTS hawser_fence (resource text PRIMARY KEY, epoch bigint NOT NULL)"

    public static func createTable(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(PostgresQuery(unsafeSQL: tableDefinition), logger: logger)
    }

    /// Call first in the transaction of the write (after `BEGIN`). Throws `CoordinationError.staleEpoch`.
    ///
    /// The steady state (the epoch recorded is the one presented) is one read that share-locks
    /// the row: writers under one epoch do not wait for each other, and a new leader's upsert
    /// waits until their transactions end, so none commits after the newer epoch is recorded.
    public static func check(_ connection: PostgresConnection, resource: String, epoch: Epoch, logger: Logger) async throws {
        let value = Int64(epoch.value)
        let recorded = try await connection.query("SELECT epoch FROM hawser_fence WHERE resource = \(resource) FOR SHARE", logger: logger)
        for try await current in recorded.decode(Int64.self) {
            if current == value { return }
            if current > value {
                throw CoordinationError.staleEpoch(resource: resource, presented: epoch, current: Epoch(UInt64(current)))
            }
        }
        try await raise(connection, resource: resource, epoch: epoch, over: "<=", logger: logger)
    }

    /// A new owner's claim, first in a transaction of its own: records `epoch` only if it is
    /// higher than the one recorded, and throws `CoordinationError.staleEpoch` otherwise. An
    /// equal epoch is refused too: it was claimed already, by another process (the same number
    /// from another election: two elections' epochs can meet) or by this one in an attempt whose
    /// answer was lost; either way the term must not begin on it. Once claimed, the owner's writes
    /// at its epoch pass `check`.
    public static func claim(_ connection: PostgresConnection, resource: String, epoch: Epoch, logger: Logger) async throws {
        try await raise(connection, resource: resource, epoch: epoch, over: "<", logger: logger)
    }

    /// Records `epoch` if the recorded one stands in relation `over` (`<` or `<=`) to it; else
    /// throws `staleEpoch` with the epoch recorded.
    private static func raise(_ connection: PostgresConnection, resource: String, epoch: Epoch, over relation: String,
                              logger: Logger) async throws {
        let accepted = try await connection.query("""
            INSERT INTO hawser_fence (resource, epoch) VALUES (\(resource), \(Int64(epoch.value)))
            ON CONFLICT (resource) DO UPDATE SET epoch = EXCLUDED.epoch WHERE hawser_fence.epoch \(unescaped: relation) EXCLUDED.epoch
            RETURNING epoch
            """, logger: logger)
        for try await _ in accepted { return }
        let current = try await connection.query("SELECT epoch FROM hawser_fence WHERE resource = \(resource)", logger: logger)
        var highest = epoch
        for try await value in current.decode(Int64.self) { highest = Epoch(UInt64(value)) }
        throw CoordinationError.staleEpoch(resource: resource, presented: epoch, current: highest)
    }

    /// The epoch recorded for `resource`, if any; a plain read that locks nothing.
    public static func recorded(_ connection: PostgresConnection, resource: String, logger: Logger) async throws -> Epoch? {
        let rows = try await connection.query("SELECT epoch FROM hawser_fence WHERE resource = \(resource)", logger: logger)
        for try await value in rows.decode(Int64.self) { return Epoch(UInt64(value)) }
        return nil
    }

    /// The check of a store's fence (nil: an unfenced, single-process store). Throws
    /// `CoordinationError.notOwner` while the fence holds no epoch, `.staleEpoch` as above.
    public static func check(_ connection: PostgresConnection, _ fence: WriteFence?, logger: Logger) async throws {
        guard let fence else { return }
        try await check(connection, resource: fence.resource, epoch: fence.epochForWrite(), logger: logger)
    }
}
