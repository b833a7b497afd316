import Coordination
import Foundation
import HawserCore
import Logging
import NIOCore
import Postgres
import PostgresNIO
import ServiceLifecycle

/// A PostgreSQL database the node or the notary keeps its state in, through PostgresNIO's pooled
/// client. `connect` proves at once that the server answers and accepts the login (within a
/// timeout), so that a wrong URL or password stops start-up with a clear error instead of a
/// hanging pool. Run it as a service: the pool's connections live as long as `run()`.
///
/// Every transaction commits with PostgreSQL's defaults (`synchronous_commit = on`), so a commit
/// has returned only once it is on disk (fsync) at the server.
public final class PostgresDatabase: Service, Sendable {
    let client: PostgresClient
    let logger: Logger
    /// `host:port` as errors name it (never the password).
    public let server: String
    /// `host:port/database`: which database this is (PostgreSQL's default database is the user's name).
    public let name: String
    private let single: PostgresConnection.Configuration
    private let timeout: Duration
    private let requestTimeout: Duration
    private let watch = ConnectionWatch()

    /// Checks `url` (`postgres://user@host:port/database`), logs in once within `timeout` and
    /// returns the database with its pool (not yet running). `password` is used if the URL has
    /// none. Throws `StoreDatabaseError`.
    ///
    /// A request waits at most `timeout` for a pooled connection and then runs at most
    /// `requestTimeout` on it. With a `stallLimit`, the server ends a pooled session's
    /// transaction left idle, and a statement's wait for a lock, after half of it each
    /// (`PostgresSessionLimits.pool`): a process stopped inside a transaction (SIGSTOP, a hung VM)
    /// cannot hold its row locks, the fencing row among them, for longer than `stallLimit`.
    public static func connect(url: String, password: String?, timeout: Duration = .seconds(10),
                               requestTimeout: Duration = .seconds(30), stallLimit: Duration? = nil,
                               maxConnections: Int = 8, logger: Logger) async throws -> PostgresDatabase {
        var configuration: PostgresConnection.Configuration
        do { configuration = try PostgresURL.configuration(url) } catch {
            throw StoreDatabaseError(.badURL, "\(error)")
        }
        if configuration.password == nil { configuration.password = password }
        configuration.options.connectTimeout = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
                                                                      + timeout.components.attoseconds / 1_000_000_000)
        let database = PostgresDatabase(configuration, maxConnections: maxConnections, timeout: timeout, requestTimeout: requestTimeout,
                                        stallLimit: stallLimit, logger: logger)
        try await database.withSingleConnection { _, _ in }
        return database
    }

    private init(_ configuration: PostgresConnection.Configuration, maxConnections: Int, timeout: Duration, requestTimeout: Duration,
                 stallLimit: Duration?, logger: Logger) {
        single = configuration
        self.timeout = timeout
        self.requestTimeout = requestTimeout
        server = "\(configuration.host ?? "?"):\(configuration.port ?? 5432)"
        name = "\(server)/\(configuration.database ?? configuration.username)"
        var pooled = PostgresClient.Configuration(host: configuration.host ?? "127.0.0.1", port: configuration.port ?? 5432,
                                                  username: configuration.username, password: configuration.password,
                                                  database: configuration.database, tls: .disable)
        pooled.options.connectTimeout = timeout
        pooled.options.maximumConnections = maxConnections
        if let stallLimit { pooled.options.additionalStartupParameters = PostgresSessionLimits.pool(stallLimit) }
        client = PostgresClient(configuration: pooled, backgroundLogger: logger)
        self.logger = logger
    }

    public func run() async throws {
        await client.run()
    }

    /// Runs `body` in one transaction on a pooled connection: committed if it returns, rolled back
    /// if it throws (its error is thrown as it was; PostgreSQL's own become `StoreDatabaseError`).
    /// Bounded as a whole, like `read`.
    ///
    /// `waitForDisk: false` commits without waiting for the commit to reach the disk
    /// (`synchronous_commit = off` for this transaction alone), for writes whose loss in a crash of
    /// the database is harmless: an outbox acknowledgement (the message is delivered again, and the
    /// receiver keeps it once), an inbox pruning (it is done again). Not a reservation: the node
    /// may outlive the crash and act on it (`PostgresVault`). The log is flushed in order, so the
    /// next commit that waits makes this one durable too.
    func transaction<T: Sendable>(waitForDisk: Bool = true,
                                  _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let logger = self.logger
        return try await call { connection in
            try await connection.query("BEGIN", logger: logger)
            if !waitForDisk { try await connection.query("SET LOCAL synchronous_commit = off", logger: logger) }
            let value: T
            do {
                value = try await body(connection, logger)
            } catch {
                // A closed connection has no transaction left to end, and PostgresNIO would never
                // answer a ROLLBACK sent on it (`PostgresCallRules`).
                if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                throw error
            }
            try await connection.query("COMMIT", logger: logger)
            return value
        }
    }

    /// Runs `body` on a pooled connection outside an explicit transaction: reads, and writes made
    /// in one statement, which is a transaction of its own. It waits at most the connect timeout
    /// for a connection and at most the request timeout on it, and ends at once if its
    /// connection closes (`database_unavailable` each); a commit so abandoned may have been made.
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let logger = self.logger
        return try await call { connection in try await body(connection, logger) }
    }

    private func call<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await PostgresCall.run(on: client, watch: watch, leaseBound: timeout, requestBound: requestTimeout,
                                              server: server, body)
        } catch {
            throw StoreDatabaseError.wrapping(error, at: server)
        }
    }

    /// Runs `body` on a connection of its own, opened and closed here, all within the connect
    /// timeout: for the checks and the schema made before the pool runs. A server that accepts
    /// the connection and then says nothing cannot hold start-up.
    func withSingleConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let (single, logger, timeout, server) = (self.single, self.logger, self.timeout, self.server)
        do {
            let value = try await within(timeout) {
                let connection = try await PostgresConnection.connect(configuration: single, id: 0, logger: logger)
                do {
                    let value = try await body(connection, logger)
                    try await connection.close()
                    return value
                } catch {
                    try? await connection.close()
                    throw error
                }
            }
            guard let value else {
                throw StoreDatabaseError(.unavailable, "PostgreSQL at \(server) did not answer within \(timeout)")
            }
            return value
        } catch {
            throw StoreDatabaseError.wrapping(error, at: server)
        }
    }
}

extension PostgresDatabase {
    /// A new owner's claim of a store's fence at the epoch it holds (`PostgresFencing.claim`),
    /// in a transaction of its own that waits at most a second for the fencing row (a former
    /// owner's transaction under way), so that repeated claims do not pile up in the pool.
    /// Nothing to do for an unfenced store.
    func claim(_ fence: WriteFence?) async throws {
        guard let fence else { return }
        let epoch = try fence.epochForWrite()
        try await transaction { connection, logger in
            try await connection.query("SET LOCAL lock_timeout = '1s'", logger: logger)
            try await PostgresFencing.claim(connection, resource: fence.resource, epoch: epoch, logger: logger)
        }
    }

    /// Whether a store's fence still owns it (`WriteFence.checkRecorded`), by a read that waits
    /// for no lock. Nothing to do for an unfenced store.
    func checkClaim(_ fence: WriteFence?) async throws {
        guard let fence else { return }
        let recorded = try await read { connection, logger in try await PostgresFencing.recorded(connection, resource: fence.resource, logger: logger) }
        try fence.checkRecorded(recorded)
    }
}
