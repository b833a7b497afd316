import Foundation
import HawserCore
import HawserTestSupport
import Logging
import Synchronization
@testable import PostgresStores
import PostgresNIO
import Testing

/// Every call on a `PostgresDatabase` pool ends, whatever its connection does: PostgresNIO never
/// answers a query written to a connection after it has closed (its promise is dropped with the
/// connection's handlers), so a call whose connection the server ended between two statements
/// waited for ever, and with it the flow engine's group committer (defect B). A server that stops
/// answering is given up after the request bound.
@Suite(.enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"), .timeLimit(.minutes(3)))
struct PostgresCallBoundTests {
    /// Ends the server process of the session whose backend pid is `pid` and waits until this
    /// side has seen its connection close: the next statement is sent on a closed connection.
    static func endSession(_ pid: Int32, of connection: PostgresConnection, on server: PostgresServer) async throws {
        try await server.sql("SELECT pg_terminate_backend(\(pid))")
        try? await connection.closeFuture.get()
    }

    static func backendPid(_ connection: PostgresConnection, _ logger: Logger) async throws -> Int32 {
        for try await pid in try await connection.query("SELECT pg_backend_pid()", logger: logger).decode(Int32.self) { return pid }
        throw StoreDatabaseError(.unavailable, "no pid")
    }

    /// Where the connection closes under a call.
    enum Closing: String, CaseIterable, Sendable {
        /// Between two statements of a transaction: the second is sent on the closed connection.
        case betweenStatementsOfATransaction
        /// Between two statements outside a transaction.
        case betweenStatementsOfARead
        /// During a statement of a transaction, which fails: a crash of the server under load.
        /// PostgresNIO's `withTransaction` then sent ROLLBACK, which on a loaded machine can reach
        /// the connection after it has closed.
        case duringAStatementOfATransaction
    }

    @Test(arguments: Closing.allCases)
    func aCallWhoseConnectionClosesFailsAsUnavailable(_ closing: Closing) async throws {
        let server = try await PostgresServer.start()
        defer { server.stop() }
        let database = try await PostgresDatabase.connect(url: try await server.createDatabase(), password: nil, logger: quietLogger)
        let pool = Task { try await database.run() }
        defer { pool.cancel() }

        let body: @Sendable (PostgresConnection, Logger) async throws -> Int = { connection, logger in
            if closing == .duringAStatementOfATransaction {
                try await connection.query("SELECT pg_terminate_backend(pg_backend_pid())", logger: logger)
            } else {
                try await Self.endSession(try await Self.backendPid(connection, logger), of: connection, on: server)
                try await connection.query("SELECT 1", logger: logger)
            }
            return 1
        }
        let inTransaction = closing != .betweenStatementsOfARead
        let outcome: String? = try await within(.seconds(60)) {
            do {
                _ = inTransaction ? try await database.transaction(body) : try await database.read(body)
                return "returned"
            } catch let error as StoreDatabaseError {
                return error.code.rawValue
            } catch {
                return "\(error)"
            }
        }
        #expect(outcome == StoreDatabaseError.Code.unavailable.rawValue, "the call ends with database_unavailable")
        // The pool serves later calls on a new connection (one made before it has seen the close
        // may meet the closed one, and fails as unavailable too).
        try await eventually("a call served after the close") {
            let one = try? await database.read { connection, logger in
                for try await value in try await connection.query("SELECT 1", logger: logger).decode(Int32.self) { return value }
                return 0
            }
            return one == 1
        }
    }

    @Test func aCallTheServerLeavesUnansweredEndsAfterTheRequestBound() async throws {
        let server = try await PostgresServer.start()
        defer { server.stop() }
        let database = try await PostgresDatabase.connect(url: try await server.createDatabase(), password: nil,
                                                          requestTimeout: .seconds(2), logger: quietLogger)
        let pool = Task { try await database.run() }
        defer { pool.cancel() }
        let stopped = Mutex<Int32?>(nil)
        defer { if let pid = stopped.withLock({ $0 }) { kill(pid, SIGCONT) } }

        // The server process of the session stops (SIGSTOP) before the statement: no answer comes.
        let outcome: String? = try await within(.seconds(60)) {
            do {
                _ = try await database.read { connection, logger in
                    let pid = try await Self.backendPid(connection, logger)
                    stopped.withLock { $0 = pid }
                    kill(pid, SIGSTOP)
                    try await connection.query("SELECT 1", logger: logger)
                    return 1
                }
                return "returned"
            } catch {
                return "\(error)"
            }
        }
        #expect(outcome?.contains("did not answer within 2.0 seconds (database_unavailable)") == true, "\(String(describing: outcome))")
        // Its connection was closed: once the server process runs again it ends, and the pool
        // serves later calls on another.
        if let pid = stopped.withLock({ $0 }) { kill(pid, SIGCONT) }
        try await eventually("a call served after the bound") {
            let one = try? await database.read { connection, logger in
                for try await value in try await connection.query("SELECT 1", logger: logger).decode(Int32.self) { return value }
                return 0
            }
            return one == 1
        }
    }
}
