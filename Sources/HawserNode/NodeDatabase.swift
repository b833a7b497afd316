import Coordination
import Embedded
import Flows
import Foundation
import Logging
import PostgresStores
import ServiceLifecycle
import Vault

/// The node's stores, on whichever back end the `database` section chose, and the services they
/// need running (the PostgreSQL pool).
public struct NodeDatabase: Sendable {
    public let flows: any NodeFlowStore
    public let vault: any VaultStore
    let services: [any Service]

    /// Opens the database of `configuration`: SQLite in `data`, or PostgreSQL, reached, logged
    /// into and schema-checked within the connect timeout (`StoreDatabaseError`).
    static func open(_ configuration: NodeDatabaseConfiguration, data: String, fence: WriteFence?,
                     resolve: (String) -> String, logger: Logger) async throws -> NodeDatabase {
        switch configuration.kind {
        case .sqlite:
            let database = try SQLiteNodeDatabase(path: data + "/node.sqlite", fence: fence)
            return NodeDatabase(flows: database.flows, vault: database.vault, services: [])
        case .postgres:
            let password = try configuration.password(resolve: resolve, environment: ProcessInfo.processInfo.environment)
            let pool = try await PostgresDatabase.connect(url: configuration.url ?? "", password: password,
                                                          timeout: .milliseconds(configuration.connectTimeoutMillis),
                                                          maxConnections: configuration.maxConnections, logger: logger)
            let database = try await PostgresNodeDatabase.open(pool, fence: fence)
            return NodeDatabase(flows: database.flows, vault: database.vault, services: [pool])
        }
    }
}
