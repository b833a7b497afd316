import Coordination
import HawserCore
import Logging
import NIOCore
import PostgresNIO

/// One PostgreSQL connection used by one party at a time, reopened after a failure. Every use is
/// bounded: when `timeout` passes, the connection is closed, which fails the query in flight (a
/// query cannot otherwise be abandoned), and the next use opens a new one.
actor PostgresSession {
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    /// `host:port` as errors name it (never the password).
    private let server: String
    private var connection: PostgresConnection?
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var nextID = 0

    init(configuration: PostgresConnection.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.server = "\(configuration.host ?? "?"):\(configuration.port ?? 5432)"
    }

    /// Runs `body` alone on the connection, in a transaction if `transaction`. Every failure is a
    /// `CoordinationError` that says what is wrong (`PostgresProblem`).
    func use<T: Sendable>(timeout: Duration, transaction: Bool = true,
                          _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        do {
            return try await attempt(timeout: timeout, transaction: transaction, body)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw PostgresProblem.describe(error, at: server)
        }
    }

    private func attempt<T: Sendable>(timeout: Duration, transaction: Bool,
                                      _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        let connection = try await open()
        let logger = self.logger
        do {
            let value = try await within(timeout) {
                guard transaction else { return try await body(connection, logger) }
                try await connection.query("BEGIN", logger: logger)
                do {
                    let value = try await body(connection, logger)
                    try await connection.query("COMMIT", logger: logger)
                    return value
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
            guard let value else {
                try? await connection.close()  // fails the query in flight
                throw CoordinationError.unavailable("PostgreSQL did not answer within \(timeout)")
            }
            return value
        } catch {
            if connection.isClosed || !(error is CoordinationError) {
                try? await connection.close()
                self.connection = nil
            }
            throw error
        }
    }

    func close() async {
        try? await connection?.close()
        connection = nil
    }

    /// A session dropped without `close()` (its owner failed first) closes its connection still;
    /// the closure keeps the connection until it is closed, which PostgresNIO requires of a
    /// connection that is freed.
    deinit {
        if let connection { connection.close().whenComplete { _ in _ = connection } }
    }

    private func open() async throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        nextID += 1
        let opened = try await PostgresConnection.connect(configuration: configuration, id: nextID, logger: logger)
        connection = opened
        return opened
    }

    private func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }
}
