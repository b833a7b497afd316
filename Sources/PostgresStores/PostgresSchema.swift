import Logging
import PostgresNIO

/// The tables of one part of Hawser (the node's, the notary's) in a PostgreSQL database, and
/// the version they have. A new database gets them; a database at this version is used as it
/// is; one at an older version that `upgrades` cover is brought to this one; any other is
/// refused with `database_schema_too_old` or `_too_new`, before anything is written, instead of
/// failing later in the middle of a flow.
struct PostgresSchema: Sendable {
    /// The row of `hawser_schema` that holds this part's version.
    var component: String
    var version: Int
    /// What `version` consists of, run once in a new database.
    var statements: [String]
    /// The statements that take version `v` to `v + 1`, by `v`.
    var upgrades: [Int: [String]] = [:]

    /// Creates or checks the tables, serialised with any other process doing the same.
    func prepare(_ database: PostgresDatabase) async throws {
        let schema = self
        try await database.withSingleConnection { connection, logger in
            try await connection.query("BEGIN", logger: logger)
            do {
                // Two processes starting on one new database must not race on CREATE TABLE.
                try await connection.query("SELECT pg_advisory_xact_lock(7262938)", logger: logger)
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS hawser_schema (component text PRIMARY KEY, version integer NOT NULL)
                    """, logger: logger)
                // Outside the versioned tables: older versions ignore it (`PostgresIncarnation`).
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS hawser_incarnation (component text PRIMARY KEY, incarnation text NOT NULL)
                    """, logger: logger)
                var found: Int?
                let rows = try await connection.query("SELECT version FROM hawser_schema WHERE component = \(schema.component)", logger: logger)
                for try await version in rows.decode(Int.self) { found = version }
                if let found, let steps = schema.steps(from: found) {
                    for statement in steps { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                    try await connection.query("UPDATE hawser_schema SET version = \(schema.version) WHERE component = \(schema.component)",
                                               logger: logger)
                } else if let found {
                    try schema.check(found, at: database.server)
                } else {
                    for statement in schema.statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                    try await connection.query("INSERT INTO hawser_schema (component, version) VALUES (\(schema.component), \(schema.version))",
                                               logger: logger)
                }
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Whether the database holds this part's tables (its row of `hawser_schema`), read without
    /// making anything: a start can refuse a database that lost them before `prepare` remakes them.
    func isPresent(_ database: PostgresDatabase) async throws -> Bool {
        let component = self.component
        return try await database.withSingleConnection { connection, logger in
            var table = false
            for try await found in try await connection.query("SELECT to_regclass('hawser_schema') IS NOT NULL", logger: logger)
                .decode(Bool.self) { table = found }
            guard table else { return false }
            let rows = try await connection.query("SELECT version FROM hawser_schema WHERE component = \(component)", logger: logger)
            for try await _ in rows.decode(Int.self) { return true }
            return false
        }
    }

    /// The upgrades from version `found` to this one, in order; nil unless every step is known.
    func steps(from found: Int) -> [String]? {
        guard found < version else { return nil }
        var out = [String]()
        for step in found..<version {
            guard let statements = upgrades[step] else { return nil }
            out += statements
        }
        return out
    }

    func check(_ found: Int, at server: String) throws {
        if found < version {
            throw StoreDatabaseError(.schemaTooOld, "the \(component) tables in PostgreSQL at \(server) have schema version \(found), "
                                     + "older than the \(version) this Hawser uses; upgrade them or use a new database")
        }
        if found > version {
            throw StoreDatabaseError(.schemaTooNew, "the \(component) tables in PostgreSQL at \(server) have schema version \(found), "
                                     + "newer than the \(version) this Hawser uses; run the Hawser that wrote them")
        }
    }
}
