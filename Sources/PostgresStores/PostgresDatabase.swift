import Foundation
import HawserCore
import Logging
import NIOCore
import Postgres
import PostgresNIO
import ServiceLifecycle
import Synchronization

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
    let server: String
    private let single: PostgresConnection.Configuration
    private let timeout: Duration

    /// Checks `url` (`postgres://user@host:port/database`), logs in once within `timeout` and
    /// returns the database with its pool (not yet running). `password` is used if the URL has
    /// none. Throws `StoreDatabaseError`.
    public static func connect(url: String, password: String?, timeout: Duration = .seconds(10),
                               maxConnections: Int = 8, logger: Logger) async throws -> PostgresDatabase {
        var configuration: PostgresConnection.Configuration
        do { configuration = try PostgresURL.configuration(url) } catch {
            throw StoreDatabaseError(.badURL, "\(error)")
        }
        if configuration.password == nil { configuration.password = password }
        configuration.options.connectTimeout = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
                                                                      + timeout.components.attoseconds / 1_000_000_000)
        let database = PostgresDatabase(configuration, maxConnections: maxConnections, timeout: timeout, logger: logger)
        try await database.withSingleConnection { _, _ in }
        return database
    }

    private init(_ configuration: PostgresConnection.Configuration, maxConnections: Int, timeout: Duration, logger: Logger) {
        single = configuration
        self.timeout = timeout
        server = "\(configuration.host ?? "?"):\(configuration.port ?? 5432)"
        var pooled = PostgresClient.Configuration(host: configuration.host ?? "127.0.0.1", port: configuration.port ?? 5432,
                                                  username: configuration.username, password: configuration.password,
                                                  database: configuration.database, tls: .disable)
        pooled.options.connectTimeout = timeout
        pooled.options.maximumConnections = maxConnections
        client = PostgresClient(configuration: pooled, backgroundLogger: logger)
        self.logger = logger
    }

    public func run() async throws {
        await client.run()
    }

    /// Runs `body` in one transaction on a pooled connection: committed if it returns, rolled back
    /// if it throws (its error is thrown as it was; PostgreSQL's own become `StoreDatabaseError`).
    func transaction<T: Sendable>(_ body: @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let (client, logger) = (self.client, self.logger)
        do {
            return try await leased { granted in
                try await client.withTransaction(logger: logger) { connection in
                    try granted()
                    return try await body(connection, logger)
                }
            }
        } catch let error as PostgresTransactionError {
            throw StoreDatabaseError.wrapping(error.closureError ?? error.commitError ?? error.beginError ?? error, at: server)
        } catch {
            throw StoreDatabaseError.wrapping(error, at: server)
        }
    }

    /// Runs `body` on a pooled connection outside an explicit transaction: reads, and writes made
    /// in one statement, which is a transaction of its own.
    func read<T: Sendable>(_ body: @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let (client, logger) = (self.client, self.logger)
        do {
            return try await leased { granted in
                try await client.withConnection { connection in
                    try granted()
                    return try await body(connection, logger)
                }
            }
        } catch {
            throw StoreDatabaseError.wrapping(error, at: server)
        }
    }

    /// Runs `use`, which leases a pooled connection and calls `granted` once it has one, and
    /// gives up waiting for the connection after the connect timeout (`database_unavailable`).
    /// While the server is down the pool keeps trying to connect and holds every request for up
    /// to a minute: a commit would wait that long, and with it a flow engine's stop. A query
    /// that has its connection is not cut short: a crash of the server closes the connection,
    /// which fails the query.
    private func leased<T: Sendable>(_ use: @Sendable (_ granted: @Sendable () throws -> Void) async throws -> T) async throws -> T {
        let wait = LeaseWait()
        let (timeout, server) = (self.timeout, self.server)
        return try await withoutActuallyEscaping(use) { use in
            try await withThrowingTaskGroup(of: LeaseOutcome<T>.self) { group in
                group.addTask {
                    do {
                        return .done(try await use { try wait.grant() })
                    } catch let error where !(error is CancellationError || error is PSQLError) && wait.expire() {
                        // The pool refused the request (its connection attempts have failed for a minute).
                        throw StoreDatabaseError(.unavailable, "cannot connect to PostgreSQL at \(server): \(error)")
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return .expired
                }
                while let outcome = try await group.next() {
                    switch outcome {
                    case .done(let value):
                        group.cancelAll()
                        return value
                    case .expired:
                        guard wait.expire() else { continue }  // the query runs: it ends on its own
                        group.cancelAll()
                        throw StoreDatabaseError(.unavailable, "no connection to PostgreSQL at \(server) within \(timeout)")
                    }
                }
                throw CancellationError()
            }
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

private enum LeaseOutcome<T: Sendable>: Sendable {
    case done(T)
    case expired
}

/// Whether a request got its pooled connection before its time ran out; whichever comes first wins.
private final class LeaseWait: Sendable {
    private enum State { case waiting, granted, expired }
    private let state = Mutex(State.waiting)

    /// The connection came: throws if the time had run out already (the request is being given up).
    func grant() throws {
        try state.withLock { state in
            guard state == .waiting else { throw CancellationError() }
            state = .granted
        }
    }

    /// The time ran out: true if no connection had come.
    func expire() -> Bool {
        state.withLock { state in
            guard state == .waiting else { return false }
            state = .expired
            return true
        }
    }
}
