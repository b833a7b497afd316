import Foundation
import PostgresNIO

/// A random id a PostgreSQL database is given once per part of Hawser (`component`: `node`,
/// `notary`), as `SQLiteIncarnation` gives a SQLite file: a data directory's record of the
/// database holds it, so that a database made afresh under the same name (dropped and re-created,
/// a peer process then making the tables again) is told from the one the record was made for.
/// Kept in a table of its own, which older versions ignore.
enum PostgresIncarnation {
    static func ensure(_ database: PostgresDatabase, component: String) async throws -> String {
        let candidate = UUID().uuidString
        // The table is made with the schema (`PostgresSchema.prepare`), serialised with other
        // processes; asked at start-up, before the pool runs, on a connection of its own.
        return try await database.withSingleConnection { connection, logger in
            try await connection.query("""
                INSERT INTO hawser_incarnation (component, incarnation) VALUES (\(component), \(candidate)) ON CONFLICT DO NOTHING
                """, logger: logger)
            let rows = try await connection.query("SELECT incarnation FROM hawser_incarnation WHERE component = \(component)", logger: logger)
            for try await incarnation in rows.decode(String.self) { return incarnation }
            throw StoreDatabaseError(.unavailable, "the database's incarnation could not be read back")
        }
    }
}

extension PostgresNodeDatabase {
    /// This database's incarnation for the node (`PostgresIncarnation`), made on the first call.
    public func incarnation() async throws -> String { try await PostgresIncarnation.ensure(database, component: "node") }
}

extension PostgresNotaryStore {
    /// This database's incarnation for the notary (`PostgresIncarnation`), made on the first call.
    public func incarnation() async throws -> String { try await PostgresIncarnation.ensure(database, component: "notary") }
}
