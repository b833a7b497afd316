import Coordination
import NIOCore
import Notary
import Postgres
import PostgresNIO

/// The notary's `ReplicatedLog` in a PostgreSQL table, for a notary whose processes share one
/// database (hot-warm): an append has returned once PostgreSQL has made it durable (fsynced),
/// and every process reads the same log. It replicates nothing itself; PostgreSQL's own
/// replication is the operator's choice. With a `fence` (hot-warm) an append commits only under
/// the newest epoch of its resource, so a deposed notary appends nothing.
public final class PostgresLog: ReplicatedLog, Sendable {
    private let database: PostgresDatabase
    private let fence: WriteFence?
    private let tail: PositionSignal
    /// How often a reader that found nothing looks again, for entries appended by other processes.
    private let poll: Duration

    /// Creates the notary's tables in a new database or checks their version (`StoreDatabaseError`).
    public static func open(_ database: PostgresDatabase, fence: WriteFence? = nil, poll: Duration = .milliseconds(50)) async throws -> PostgresLog {
        try await PostgresNotaryStore.schema.prepare(database)
        // Before the pool runs (as the schema): a connection of its own.
        let last = try await database.withSingleConnection { connection, logger in try await Self.last(connection, logger) }
        return PostgresLog(database: database, fence: fence, last: last, poll: poll)
    }

    private init(database: PostgresDatabase, fence: WriteFence?, last: UInt64, poll: Duration) {
        self.database = database
        self.fence = fence
        self.tail = PositionSignal(last)
        self.poll = poll
    }

    public func append(_ payload: [UInt8], after last: UInt64) async throws {
        let fence = self.fence
        try await database.transaction { connection, logger in
            try await PostgresFencing.check(connection, fence, logger: logger)
            // Appenders to one log take turns; the end is read under the lock.
            try await connection.query("SELECT pg_advisory_xact_lock(7262940)", logger: logger)
            guard try await Self.last(connection, logger) == last else { throw LogAppendConflict(expected: last) }
            try await connection.query("INSERT INTO notary_log (position, payload) VALUES (\(Int64(last + 1)), \(ByteBuffer(bytes: payload)))",
                                       logger: logger)
        }
        tail.advance(to: last + 1)
    }

    public func read(after position: UInt64, limit: Int) async throws -> [LogEntry] {
        while true {
            let found = try await database.read { connection, logger in
                var out = [LogEntry]()
                let rows = try await connection.query("""
                    SELECT position, payload FROM notary_log WHERE position > \(Int64(position)) ORDER BY position LIMIT \(Int64(limit))
                    """, logger: logger)
                for try await (at, payload) in rows.decode((Int64, ByteBuffer).self) {
                    out.append(LogEntry(position: UInt64(at), payload: Array(payload.readableBytesView)))
                }
                return out
            }
            if let last = found.last {
                tail.advance(to: last.position)
                return found
            }
            // Woken by this process's next append, or after `poll` for another process's.
            let (tail, poll) = (self.tail, self.poll)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await tail.wait(beyond: position) }
                group.addTask { try await Task.sleep(for: poll) }
                defer { group.cancelAll() }
                try await group.next()
            }
        }
    }

    public func lastPosition(applied: UInt64) async throws -> UInt64 {
        let last = try await database.read { connection, logger in try await Self.last(connection, logger) }
        tail.advance(to: last)
        return last
    }

    public func entry(at position: UInt64) async throws -> LogEntry? {
        try await database.read { connection, logger in
            let rows = try await connection.query("SELECT payload FROM notary_log WHERE position = \(Int64(position))", logger: logger)
            for try await payload in rows.decode(ByteBuffer.self) {
                return LogEntry(position: position, payload: Array(payload.readableBytesView))
            }
            return nil
        }
    }

    private static func last(_ connection: PostgresConnection, _ logger: Logger) async throws -> UInt64 {
        for try await last in try await connection.query("SELECT COALESCE(MAX(position), 0) FROM notary_log", logger: logger).decode(Int64.self) {
            return UInt64(last)
        }
        return 0
    }
}
