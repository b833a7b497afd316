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
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let (client, logger) = (self.client, self.logger)
        do {
            return try await leased { granted in
                try await client.withTransaction(logger: logger) { connection in
                    try granted(connection)
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
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let (client, logger) = (self.client, self.logger)
        do {
            return try await leased { granted in
                try await client.withConnection { connection in
                    try granted(connection)
                    return try await body(connection, logger)
                }
            }
        } catch {
            throw StoreDatabaseError.wrapping(error, at: server)
        }
    }

    /// Runs `use`, which leases a pooled connection and calls `granted` with it once it has one,
    /// within the bounds of `LeaseWatch`: no connection within the connect timeout, or a
    /// connection that closed under the request, fails it with `database_unavailable`. `use` runs
    /// in a task of its own, which is then cancelled and not waited for. Cancelling the caller
    /// cancels `use`; one that has its connection still runs to its end (its queries complete),
    /// so that the pool never hands out a connection a request still uses.
    private func leased<T: Sendable>(_ use: @escaping @Sendable (_ granted: @escaping @Sendable (PostgresConnection) throws -> Void) async throws -> T)
        async throws -> T {
        let (timeout, server) = (self.timeout, self.server)
        let lease = WatchedLease(timeout: timeout)
        let outcome = FirstResult<T>()
        let task = Task {
            do {
                outcome.finish(.success(try await use { connection in
                    guard lease.grant(connection) else { throw CancellationError() }  // given up already
                }))
            } catch let error where !(error is CancellationError || error is PSQLError) && lease.expire() {
                // The pool refused the request (its connection attempts have failed for a minute).
                outcome.finish(.failure(StoreDatabaseError(.unavailable, "cannot connect to PostgreSQL at \(server): \(error)")))
            } catch {
                outcome.finish(.failure(error))
            }
        }
        @Sendable func check() {
            switch lease.check() {
            case .wait(let delay):
                lease.timer.withLock { $0 = Deadlines.shared.schedule(after: delay, check) }
            case .done:
                return
            case .noConnection:
                outcome.finish(.failure(StoreDatabaseError(.unavailable, "no connection to PostgreSQL at \(server) within \(timeout)")))
                task.cancel()
            case .connectionClosed:
                outcome.finish(.failure(StoreDatabaseError(.unavailable, "the connection to PostgreSQL at \(server) closed under the request")))
                task.cancel()
            }
        }
        lease.timer.withLock { $0 = Deadlines.shared.schedule(after: lease.firstCheck(), check) }
        defer { lease.end() }
        return try await withTaskCancellationHandler {
            try await outcome.value()
        } onCancel: {
            task.cancel()
            // Without a connection nothing of the request runs on one: it ends now.
            if lease.expire() { outcome.finish(.failure(CancellationError())) }
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

/// A request's `LeaseWatch`, the connection the pool granted it and its timer, shared by the
/// request's task and the timer's checks.
private final class WatchedLease: Sendable {
    private let watch: Mutex<LeaseWatch>
    private let connection = Mutex<PostgresConnection?>(nil)
    let timer = Mutex<Deadlines.Handle?>(nil)

    init(timeout: Duration) { watch = Mutex(LeaseWatch(now: .now, timeout: timeout)) }

    /// False if the request was given up already: then it must not use `granted`.
    func grant(_ granted: PostgresConnection) -> Bool {
        guard watch.withLock({ $0.grant() }) else { return false }
        connection.withLock { $0 = granted }
        return true
    }

    func expire() -> Bool { watch.withLock { $0.expire() } }

    func firstCheck() -> Duration { watch.withLock { $0.firstCheck(now: .now) } }

    func check() -> LeaseWatch.Verdict {
        let closed = connection.withLock { $0?.isClosed ?? false }
        return watch.withLock { $0.check(now: .now, connectionClosed: closed) }
    }

    /// The request has its outcome: no more checks.
    func end() {
        watch.withLock { $0.end() }
        if let handle = timer.withLock({ $0 }) { Deadlines.shared.cancel(handle) }
    }
}
