import Coordination
import Embedded
import Flows
import Foundation
import HawserCore
import Logging
import PostgresStores
import ServiceLifecycle
import Vault

/// The node's stores, on whichever back end the `database` section chose, and the services they
/// need running (the PostgreSQL pool).
public struct NodeDatabase: Sendable {
    public let flows: any NodeFlowStore
    public let vault: any VaultStore
    /// The inbox and outbox of flow sessions.
    public let sessions: any SessionStore
    let services: [any Service]
    /// The same database's stores with every write fenced by the given fence (a hot-hot node's
    /// partition), on the same connections.
    let fenced: @Sendable (WriteFence) -> NodeDatabase

    /// The cheap read that tells whether the database answers (the elections' health checks,
    /// `/health/ready`): one flow looked up by its key.
    func read() async throws {
        _ = try await flows.record(FlowID("hawser-health-check"))
    }

    /// Why `read` failed or took longer than 2 s; nil if it answered.
    func readProblem() async -> String? {
        await HawserCore.readProblem { try await read() }
    }

    /// Opens the database of `configuration`: SQLite in `data`, or PostgreSQL, reached, logged
    /// into and schema-checked within the connect timeout (`StoreDatabaseError`).
    /// `waiting`: while a PostgreSQL server cannot be reached, wait for it (`connect(waiting:)`)
    /// rather than fail.
    static func open(_ configuration: NodeDatabaseConfiguration, data: String, fence: WriteFence?, waiting: Bool = false,
                     resolve: (String) -> String, logger: Logger) async throws -> NodeDatabase {
        switch configuration.kind {
        case .sqlite:
            @Sendable func stores(_ database: SQLiteNodeDatabase) -> NodeDatabase {
                NodeDatabase(flows: database.flows, vault: database.vault, sessions: database.sessions, services: [],
                             fenced: { stores(database.fenced(by: $0)) })
            }
            let path = data + "/node.sqlite"
            return stores(try DatabaseBirthRecord(data: data, name: "node-database", identity: "node.sqlite", database: "the node database (\(path))")
                .guardingSQLite(path: path, { try SQLiteNodeDatabase(path: path, fence: fence) },
                          incarnation: { try $0.incarnation() }))
        case .postgres:
            let pool = try await configuration.connect(resolve: resolve, passwordVariable: NodeDatabaseConfiguration.passwordVariable,
                                                       stallLimit: PostgresNodeDatabase.stallLimit, waiting: waiting, logger: logger)
            @Sendable func stores(_ database: PostgresNodeDatabase) -> NodeDatabase {
                NodeDatabase(flows: database.flows, vault: database.vault, sessions: database.sessions, services: [pool],
                             fenced: { stores(database.fenced(by: $0)) })
            }
            return stores(try await DatabaseBirthRecord(data: data, name: "node-database", identity: pool.name,
                                                      database: "the node database (PostgreSQL at \(pool.name))")
                .guarding(present: try await PostgresNodeDatabase.isPresent(pool), { try await PostgresNodeDatabase.open(pool, fence: fence) },
                          incarnation: { try await $0.incarnation() }))
        }
    }
}

extension NodeDatabaseConfiguration {
    /// The pool of a `postgres` section, reached and logged into within the connect timeout
    /// (`StoreDatabaseError`), with the password from `passwordFile` or `passwordVariable`, its
    /// sessions bounded by `stallLimit` if given (`PostgresDatabase.connect`).
    ///
    /// `waiting` (a process's start, but for hot-cold, whose watchdog must see it exit to hand over):
    /// while the server cannot be reached (`database_unavailable`: down, not answering, or the
    /// database not created yet) it says so in one warning and tries again, every half second at
    /// first and then every 5 s, until it answers; a refused login or a schema of another version
    /// fails at once. Serving waits for the database (002's "domino" start).
    func connect(resolve: (String) -> String, passwordVariable: String, stallLimit: Duration? = nil, waiting: Bool = false,
                 logger: Logger) async throws -> PostgresDatabase {
        let password = try password(resolve: resolve, environment: ProcessInfo.processInfo.environment, variable: passwordVariable)
        var delay = Duration.milliseconds(500)
        var said = false
        while true {
            do {
                let pool = try await PostgresDatabase.connect(url: url ?? "", password: password, timeout: .milliseconds(connectTimeoutMillis),
                                                              requestTimeout: .milliseconds(requestTimeoutMillis), stallLimit: stallLimit,
                                                              maxConnections: maxConnections, logger: logger)
                if said { logger.warning("the database answers: starting") }
                return pool
            } catch let error as StoreDatabaseError where waiting && error.code == .unavailable {
                if !said { logger.warning("waiting for the database before serving: \(error); trying again until it answers") }
                said = true
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}
