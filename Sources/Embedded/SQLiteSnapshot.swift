import Foundation
import GRDB

/// Snapshots of a replica's store (`notary.sqlite`), so that a new replica can start from another
/// replica's state and continue from the log instead of replaying it from position 1. A snapshot
/// is a consistent copy made with SQLite's online backup while the replica keeps applying; the
/// store holds its own applied position, so the copy says where in the log to continue.
public enum SQLiteSnapshot {
    /// Copies the store at `storePath` into a new single-file database at `destination` and returns
    /// the applied position the copy holds.
    public static func write(store storePath: String, to destination: String) throws -> UInt64 {
        guard FileManager.default.fileExists(atPath: storePath) else { throw SnapshotError("there is no store at \(storePath)") }
        try? FileManager.default.removeItem(atPath: destination)
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        let source = try DatabasePool(path: storePath, configuration: configuration)
        do {
            let copy = try DatabaseQueue(path: destination)
            // The backup reads in one transaction: effects and position are copied together.
            try source.backup(to: copy)
            try copy.writeWithoutTransaction { try $0.execute(sql: "PRAGMA journal_mode = DELETE") }
            try copy.close()
        }
        try source.close()
        return try appliedPosition(of: destination)
    }

    /// Checks that `path` is a notary store and returns its applied position.
    public static func appliedPosition(of path: String) throws -> UInt64 {
        var configuration = Configuration()
        configuration.readonly = true
        let db: DatabaseQueue
        do { db = try DatabaseQueue(path: path, configuration: configuration) } catch {
            throw SnapshotError("\(path) is not a SQLite database: \(error)")
        }
        defer { try? db.close() }
        do {
            return try db.read { db in
                for table in ["spent", "outcomes", "applied"] where try !db.tableExists(table) {
                    throw SnapshotError("\(path) is not a notary store (it has no `\(table)` table)")
                }
                guard let position = try Int64.fetchOne(db, sql: "SELECT position FROM applied WHERE id = 1"), position >= 0 else {
                    throw SnapshotError("\(path) holds no applied position")
                }
                return UInt64(position)
            }
        } catch let error as SnapshotError {
            throw error
        } catch {
            throw SnapshotError("\(path) is not a notary store: \(error)")
        }
    }
}

/// A snapshot that cannot be made or used, in one sentence.
public struct SnapshotError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
