import Coordination
import Logging
import PostgresNIO

/// The fencing check inside a PostgreSQL transaction: refuses a write whose epoch is lower than
/// the highest one seen for the resource, and records a higher one. The upsert locks the row, so
/// fenced writers to one resource are serialised until their transactions end; a stale leader's
/// transaction fails as a whole.
///
/// A new leader should make one fenced write (or call `check` alone) as soon as it leads.
public enum PostgresFencing {
    public static func createTable(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("CREATE TABLE IF NOT EXISTS hawser_fence (resource text PRIMARY KEY, epoch bigint NOT NULL)", logger: logger)
    }

    /// Call first in the transaction of the write (after `BEGIN`). Throws `CoordinationError.staleEpoch`.
    public static func check(_ connection: PostgresConnection, resource: String, epoch: Epoch, logger: Logger) async throws {
        let value = Int64(epoch.value)
        let accepted = try await connection.query("""
            INSERT INTO hawser_fence (resource, epoch) VALUES (\(resource), \(value))
            ON CONFLICT (resource) DO UPDATE SET epoch = EXCLUDED.epoch WHERE hawser_fence.epoch <= EXCLUDED.epoch
            RETURNING epoch
            """, logger: logger)
        for try await _ in accepted { return }
        let current = try await connection.query("SELECT epoch FROM hawser_fence WHERE resource = \(resource)", logger: logger)
        var highest = epoch
        for try await value in current.decode(Int64.self) { highest = Epoch(UInt64(value)) }
        throw CoordinationError.staleEpoch(resource: resource, presented: epoch, current: highest)
    }
}
