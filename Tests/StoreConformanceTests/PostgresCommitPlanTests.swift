import Flows
import HawserCore
import HawserTestSupport
@testable import PostgresStores
import Testing

/// The group commit's plans find rows by their keys however large the tables have grown since the
/// connection first ran it. PL/pgSQL keeps a statement's plan for the connection's life, and a
/// node's pooled connections start on an empty database: the plans made then scanned the whole
/// `flows` table (and the journal) in every commit, until an automatic ANALYZE happened to replan
/// them (a fresh node on PostgreSQL ran at 716 flows/s with 40,000 flows in its first minute,
/// PostgreSQL's CPU 1.04 ms a flow, against 0.26 ms once replanned).
@Suite(.enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"), .timeLimit(.minutes(2)))
struct PostgresCommitPlanTests {
    func flow(_ n: Int, on flows: PostgresFlowStore) async throws {
        let id = FlowID("flow-\(n)")
        let now = Instant(microsecondsSinceEpoch: 1)
        _ = try await flows.commit([.start(FlowRecord(id: id, clientRequestId: "c-\(n)", flowName: "F", arguments: [], attempts: 0,
                                                      createdAt: now, updatedAt: now))])
        _ = try await flows.commit([.journal(id, JournalEntry(sequence: 0, kind: EffectKind.record, descriptor: "", result: []), [])])
        _ = try await flows.commit([.state(id, FlowState(status: .completed, result: [], attempts: 0, updatedAt: now), []), .compact(id)])
    }

    @Test func commitsOnAGrownTableReadNoWholeTable() async throws {
        let server = try await PostgresServer.start()
        defer { server.stop() }
        let url = try await server.createDatabase()
        let name = String(url.split(separator: "/").last!)
        // One connection, so that every commit runs in the session whose plans were made first.
        let database = try await PostgresDatabase.connect(url: url, password: nil, maxConnections: 1, logger: quietLogger)
        let running = Task { try await database.run() }
        defer { running.cancel() }
        let flows = try await PostgresNodeDatabase.open(database).flows
        // No automatic ANALYZE (which would replan) during the test.
        try await server.sql("ALTER TABLE flows SET (autovacuum_enabled = false); ALTER TABLE journal SET (autovacuum_enabled = false)",
                             database: name)
        // On the empty tables: PL/pgSQL settles on its generic plans after five calls.
        for n in 0..<8 { try await flow(n, on: flows) }
        try await server.sql("""
            INSERT INTO flows (id, name, arguments, status, attempts, created_at, updated_at)
                SELECT 'old-' || i, 'F', '', 'completed', 0, 1, 1 FROM generate_series(1, 20000) AS i;
            INSERT INTO journal (flow_id, sequence, kind, descriptor, result)
                SELECT 'old-' || i, 0, 'progress', '', '' FROM generate_series(1, 20000) AS i;
            """, database: name)
        try await flushStatistics(database)
        let scannedBefore = try await seqRowsRead(server, name, updates: 8)
        for n in 8..<16 { try await flow(n, on: flows) }
        try await flushStatistics(database)
        let scannedAfter = try await seqRowsRead(server, name, updates: 16)
        #expect(scannedAfter - scannedBefore == 0, "rows of flows and journal read by sequential scans in 8 commits on the grown tables")
    }

    /// Has the connection report its statistics as soon as it is idle (else within a second or more).
    func flushStatistics(_ database: PostgresDatabase) async throws {
        try await database.read { connection, logger in _ = try await connection.query("SELECT pg_stat_force_next_flush()", logger: logger) }
    }

    /// Rows of `flows` and `journal` read by sequential scans so far, once the statistics show
    /// `updates` updates of `flows`.
    func seqRowsRead(_ server: PostgresServer, _ name: String, updates: Int) async throws -> Int {
        var read = 0
        try await eventually("the statistics show \(updates) updates of flows", timeout: .seconds(30)) {
            let rows = try await server.rows("""
                SELECT (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'flows'),
                       (SELECT sum(seq_tup_read) FROM pg_stat_user_tables WHERE relname IN ('flows', 'journal'))
                """, database: name)
            guard let row = rows.first, row.count == 2, let done = Int(row[0]), let scanned = Int(row[1]) else { return false }
            read = scanned
            return done >= updates
        }
        return read
    }
}
