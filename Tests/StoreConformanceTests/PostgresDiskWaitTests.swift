import Flows
import HawserCore
import HawserTestSupport
@testable import PostgresStores
import Testing
import Vault

/// An outbox acknowledgement or an inbox pruning commits without waiting for the disk
/// (`transaction(waitForDisk: false)`); every other transaction, a reservation among them, waits.
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

    /// A flow acts on its reservation once its own journal entry is written, and that write may
    /// come after a crash of the database that the node's pool waited out. A reservation lost in
    /// the crash then left the flow sure of a state that another flow could spend (the node
    /// fault run, seed 843604: the notary refused the first flow's transaction as a conflict).
    /// So a reservation waits for the disk, and holds after a crash that loses what did not.
    @Test func aReservationHoldsAfterACrashOfTheDatabase() async throws {
        let server = try await PostgresServer.start(durableCommits: true, lateWAL: true)
        defer { server.stop() }
        let url = try await server.createDatabase()
        let database = try await PostgresDatabase.connect(url: url, password: nil, logger: quietLogger)
        let running = Task { try await database.run() }
        defer { running.cancel() }
        let node = try await PostgresNodeDatabase.open(database)
        var ids = Ids(seed: 11)
        let (a, b) = (ids.ref(), ids.ref())
        let issue = VaultUpdate(txId: a.txId, consumed: [], produced: [a, b].map {
            VaultState(ref: $0, type: "token", owner: "Alice", data: Array("{}".utf8))
        })
        let entry = JournalEntry(sequence: 0, kind: EffectKind.record, descriptor: a.txId.hex, result: [])
        _ = try await node.flows.commit([.journal(FlowID("issuer"), entry, [.vault(issue)])])

        let chosen = try await node.vault.reserve(choosing: VaultQuery(owner: "Alice"), for: "flow-1", from: 0) { _, _ in .takeAndStop }
        #expect(chosen?.map(\.ref) == [a])
        try await node.vault.reserve([b], for: "flow-2")
        // Written after both without waiting for the disk: the crash loses it.
        try await database.transaction(waitForDisk: false) { connection, logger in
            try await connection.query("CREATE TABLE not_waited (x int)", logger: logger)
        }
        try await server.restartImmediately()

        let name = String(url.split(separator: "/").last!)
        #expect(try await server.rows("SELECT to_regclass('not_waited') IS NULL", database: name) == [["t"]],
                "the crash lost what did not wait for the disk")
        let holders = try await server.rows("SELECT ref, locked_by FROM vault_states ORDER BY ref", database: name)
        #expect(Dictionary(uniqueKeysWithValues: holders.map { ($0[0], $0[1]) }) == [a.description: "flow-1", b.description: "flow-2"])
    }
}
