import Foundation
import GRDB
import Notary

/// The embedded `ReplicatedLog`: a table in its own SQLite file, fsynced on every append
/// (`synchronous = FULL`), so an acknowledged entry survives a crash of the process or machine.
/// It replicates nothing; it is the default for a single process.
public final class SQLiteLog: ReplicatedLog, Sendable {
    let db: DatabasePool
    private let tail: PositionSignal

    public init(path: String) throws {
        (db, tail) = try SQLite.opening(path) {
            let db = try SQLite.open(path, synchronousFull: true)
            try db.write { db in
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS log (position INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
            }
            return (db, PositionSignal(try db.read { try UInt64.fetchOne($0, sql: "SELECT COALESCE(MAX(position), 0) FROM log") ?? 0 }))
        }
    }

    /// Blocks the calling thread (the appender's) for the transaction.
    public func append(_ payload: [UInt8], after last: UInt64) async throws {
        try db.writeBlocking { db in
            // MAX of the integer primary key is one B-tree seek.
            let end = try UInt64.fetchOne(db.cachedStatement(sql: "SELECT COALESCE(MAX(position), 0) FROM log")) ?? 0
            guard end == last else { throw LogAppendConflict(expected: last) }
            try db.run("INSERT INTO log (position, payload) VALUES (?, ?)", [Int64(last + 1), Data(payload)])
        }
        tail.advance(to: last + 1)
    }

    /// Blocks the calling thread (the replica's) for the read, not for the wait.
    public func read(after position: UInt64, limit: Int) async throws -> [LogEntry] {
        try await tail.wait(beyond: position)
        return try db.readBlocking { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT position, payload FROM log WHERE position > ? ORDER BY position LIMIT ?"),
                             arguments: [Int64(position), limit])
                .map { LogEntry(position: UInt64($0[0] as Int64), payload: [UInt8]($0[1] as Data)) }
        }
    }

    public func lastPosition(applied: UInt64) async throws -> UInt64 { tail.value }

    public func entry(at position: UInt64) async throws -> LogEntry? {
        try await db.read { db in
            try Data.fetchOne(db, sql: "SELECT payload FROM log WHERE position = ?", arguments: [Int64(position)])
                .map { LogEntry(position: position, payload: [UInt8]($0)) }
        }
    }
}
