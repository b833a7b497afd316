import Foundation
import GRDB

/// A random id a SQLite database is given once, when it is first opened by a Hawser that keeps
/// one: a data directory's record of the database (`DatabaseBirthRecord`) holds it, so that a
/// database made afresh under the same name (another process re-created the file) is told from
/// the one the record was made for. Kept in a table of its own, which older versions ignore.
enum SQLiteIncarnation {
    static func ensure(_ db: DatabasePool) throws -> String {
        try db.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS hawser_incarnation (id INTEGER PRIMARY KEY CHECK (id = 1), incarnation TEXT NOT NULL)")
            try db.execute(sql: "INSERT OR IGNORE INTO hawser_incarnation (id, incarnation) VALUES (1, ?)", arguments: [UUID().uuidString])
            return try String.fetchOne(db, sql: "SELECT incarnation FROM hawser_incarnation WHERE id = 1")!
        }
    }
}

/// A SQLite file's incarnation read without changing the file: nil if it holds none (a file not
/// made by Hawser, or from before incarnations were kept). Opening a store makes its tables, and a
/// foreign file refused after that had been changed (found from outside).
public func sqliteIncarnation(at path: String) throws -> String? {
    // A plain queue sets no journal mode: the read writes nothing to the file.
    let queue = try DatabaseQueue(path: path)
    defer { try? queue.close() }
    return try queue.read { db in
        guard try db.tableExists("hawser_incarnation") else { return nil }
        return try String.fetchOne(db, sql: "SELECT incarnation FROM hawser_incarnation WHERE id = 1")
    }
}

extension SQLiteNodeDatabase {
    /// This database's incarnation (`SQLiteIncarnation`), made on the first call.
    public func incarnation() throws -> String { try SQLiteIncarnation.ensure(db) }
}

extension SQLiteLog {
    /// This log's incarnation (`SQLiteIncarnation`), made on the first call.
    public func incarnation() throws -> String { try SQLiteIncarnation.ensure(db) }
}
