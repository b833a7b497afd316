import Foundation
import HawserCore
import HawserTestSupport
@testable import PostgresStores
import PostgresNIO
import Testing

/// A request whose session the server ends under it (as `idle_in_transaction_session_timeout`
/// ends the session of a process paused inside a transaction): PostgresNIO drops a query written
/// to a connection after it closed, without an answer, so before every call was bounded
/// (`PostgresCallRules`: its connection closing ends it) such a request
/// waited for ever, and with it a notary's or a node's graceful stop. Now it fails with
/// `database_unavailable`, and the pool serves the next request on a new connection.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"),
       .timeLimit(.minutes(3)))
struct PostgresEndedSessionTests {
    struct Refused: Error {}

    /// `thenThrow`: the request's body fails after the close, so that what is written to the
    /// closed connection is the transaction's ROLLBACK, not the body's next query.
    @Test(arguments: [false, true]) func aRequestWhoseSessionTheServerEndsFailsInsteadOfWaitingForEver(thenThrow: Bool) async throws {
        let server = try await PostgresServer.start()
        defer { server.stop() }
        let database = try await PostgresDatabase.connect(url: try await server.createDatabase(), password: nil, timeout: .seconds(10),
                                                          logger: quietLogger)
        let pool = Task { try await database.run() }
        let (pids, pid) = AsyncStream.makeStream(of: Int32.self)
        let request = Task {
            try await database.transaction { connection, logger in
                for try await backend in try await connection.query("SELECT pg_backend_pid()", logger: logger).decode(Int32.self) {
                    pid.yield(backend)
                }
                // The server ends the session while the client is between statements.
                while !connection.isClosed { try await Task.sleep(for: .milliseconds(10)) }
                if thenThrow { throw Refused() }
                try await connection.query("SELECT 1", logger: logger)
            }
        }
        var backend: Int32?
        for await found in pids {
            backend = found
            break
        }
        try await server.sql("SELECT pg_terminate_backend(\(try #require(backend)))")

        // A bound only, far above the check's: without it a request that hangs would hold the test for ever.
        let outcome = try await within(.seconds(60)) { await request.result }
        let result = try #require(outcome, "the request on the closed connection never ended")
        #expect((try? result.get()) == nil, "it fails")
        switch result {
        case .failure(let error as StoreDatabaseError): #expect(error.code == .unavailable, "\(error)")
        // Its body's own error, when it comes before the close is seen (no ROLLBACK is sent then).
        case .failure(let error): #expect(thenThrow && error is Refused, "\(error)")
        case .success: break
        }

        // The pool may hand out the closed connection once more before it has seen the close (under
        // load: 1 full run in 3); that request fails at once, as any on a closed connection does.
        var next: Int?
        try await eventually("the pool serves a request again", timeout: .seconds(60)) {
            next = try? await database.read { connection, logger in
                for try await one in try await connection.query("SELECT 1", logger: logger).decode(Int.self) { return one }
                return 0
            }
            return next != nil
        }
        #expect(next == 1, "the pool serves the next request")
        pool.cancel()
        #expect(try await within(.seconds(60)) { await pool.result } != nil, "the pool stops")
    }
}
