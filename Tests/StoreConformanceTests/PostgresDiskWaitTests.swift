import HawserTestSupport
@testable import PostgresStores
import Testing

/// A reservation, an outbox acknowledgement or an inbox pruning commits without waiting for the
/// disk (`transaction(waitForDisk: false)`); every other transaction still waits.
@Suite(.enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"), .timeLimit(.minutes(2)))
struct PostgresDiskWaitTests {
    @Test func aTransactionThatNeedNotWaitForTheDiskLeavesEveryOtherWaiting() async throws {
        // With durable commits, as a production server runs (`synchronous_commit = on`).
        let server = try await PostgresServer.start(durableCommits: true)
        defer { server.stop() }
        let database = try await PostgresDatabase.connect(url: try await server.createDatabase(), password: nil, logger: quietLogger)
        let running = Task { try await database.run() }
        defer { running.cancel() }
        @Sendable func setting(waitForDisk: Bool) async throws -> String {
            try await database.transaction(waitForDisk: waitForDisk) { connection, logger in
                var value = ""
                for try await row in try await connection.query("SHOW synchronous_commit", logger: logger).decode(String.self) { value = row }
                return value
            }
        }
        #expect(try await setting(waitForDisk: false) == "off")
        // Whichever pooled connection each takes, the setting went with its transaction.
        for _ in 0..<8 { #expect(try await setting(waitForDisk: true) == "on") }
    }
}
