import Flows
import Foundation
import HawserCore
import HawserTestSupport
import PostgresStores
import Sessions
import Testing

/// What is particular to PostgreSQL: start-up checks that fail fast with a clear error, and
/// schema versions.
@Suite(.enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"), .timeLimit(.minutes(2)))
struct PostgresDatabaseTests {
    @Test func aBadURLAnUnreachableServerAndAWrongPasswordAreEachNamed() async throws {
        await #expect(throws: StoreDatabaseError.self) {
            _ = try await PostgresDatabase.connect(url: "mysql://u@h/db", password: nil, logger: quietLogger)
        }
        let closed = try FreePorts.take(1)[0]
        let unreachable = await #expect(throws: StoreDatabaseError.self) {
            _ = try await PostgresDatabase.connect(url: "postgres://hawser@127.0.0.1:\(closed)/postgres", password: nil,
                                                   timeout: .seconds(2), logger: quietLogger)
        }
        #expect(unreachable?.code == .unavailable)
        #expect(unreachable?.message.contains("127.0.0.1:\(closed)") == true)

        let server = try await PostgresServer.start(password: "right-horse")
        defer { server.stop() }
        // A SCRAM login computes PBKDF2 on both sides, slow in a debug build on a busy machine.
        let refused = await #expect(throws: StoreDatabaseError.self) {
            _ = try await PostgresDatabase.connect(url: server.url, password: "wrong-battery", timeout: .seconds(60), logger: quietLogger)
        }
        #expect(refused?.code == .notAuthorized)
        #expect(refused?.description.contains("wrong-battery") == false)
        let inURL = await #expect(throws: StoreDatabaseError.self) {
            _ = try await PostgresDatabase.connect(url: "postgres://hawser:staple-x@127.0.0.1:\(server.port)/postgres", password: nil,
                                                   timeout: .seconds(60), logger: quietLogger)
        }
        #expect(inURL?.description.contains("staple-x") == false)
        let database = try await PostgresDatabase.connect(url: server.url, password: "right-horse", timeout: .seconds(60), logger: quietLogger)
        let running = Task { try await database.run() }
        defer { running.cancel() }
        _ = try await PostgresNodeDatabase.open(database)
    }

    @Test func aServerThatAcceptsButNeverAnswersDoesNotHoldStartUp() async throws {
        // A listening socket nobody serves: the login gets no answer.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 8)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let silent = await #expect(throws: StoreDatabaseError.self) {
            _ = try await PostgresDatabase.connect(url: "postgres://hawser@127.0.0.1:\(port)/postgres", password: nil,
                                                   timeout: .milliseconds(500), logger: quietLogger)
        }
        #expect(silent?.code == .unavailable)
    }

    @Test func aSchemaOfAnotherVersionIsRefusedBeforeAnythingIsWritten() async throws {
        let server = try await PostgresServer.start()
        defer { server.stop() }
        for (version, code) in [(0, StoreDatabaseError.Code.schemaTooOld), (99, .schemaTooNew)] {
            let url = try await server.createDatabase()
            let name = String(url.split(separator: "/").last!)
            try await server.sql("CREATE TABLE hawser_schema (component text PRIMARY KEY, version integer NOT NULL); "
                           + "INSERT INTO hawser_schema VALUES ('node', \(version)), ('notary', \(version))", database: name)
            let database = try await PostgresDatabase.connect(url: url, password: nil, logger: quietLogger)
            let running = Task { try await database.run() }
            defer { running.cancel() }
            let node = await #expect(throws: StoreDatabaseError.self) { _ = try await PostgresNodeDatabase.open(database) }
            #expect(node?.code == code)
            let notary = await #expect(throws: StoreDatabaseError.self) { _ = try await PostgresNotaryStore.open(database) }
            #expect(notary?.code == code)
        }
        // A new database gets the tables once; opening it again finds them at this version.
        let database = try await PostgresDatabase.connect(url: try await server.createDatabase(), password: nil, logger: quietLogger)
        let running = Task { try await database.run() }
        defer { running.cancel() }
        _ = try await PostgresNodeDatabase.open(database)
        _ = try await PostgresNodeDatabase.open(database)
        _ = try await PostgresNotaryStore.open(database)
        _ = try await PostgresLog.open(database)
    }

    /// Runs `body` on a new node database at this version, on a server of its own, with the
    /// database's name (for `server.sql`).
    func withNodeDatabase(_ body: (PostgresServer, String, PostgresDatabase) async throws -> Void) async throws {
        let server = try await PostgresServer.start()
        defer { server.stop() }
        let url = try await server.createDatabase()
        let database = try await PostgresDatabase.connect(url: url, password: nil, logger: quietLogger)
        let running = Task { try await database.run() }
        defer { running.cancel() }
        _ = try await PostgresNodeDatabase.open(database)
        try await body(server, String(url.split(separator: "/").last!), database)
    }

    @Test func aNodeDatabaseOfVersionOneIsUpgradedOnceAndCommitsFlowsAndTakesMessages() async throws {
        try await withNodeDatabase { server, name, database in
            // What the Hawser before version 2 left: the same tables, without the commit function,
            // the inbox (version 3), the settings (version 4), the start queue (version 7) and the
            // notary asks (version 8); versions 5, 6 and 8 replace the function.
            try await server.sql("""
                DROP FUNCTION hawser_flow_commit; DROP TABLE inbox; DROP INDEX outbox_by_recipient; DROP TABLE node_settings; DROP TABLE flow_queue;
                DROP TABLE notary_asks; UPDATE hawser_schema SET version = 1 WHERE component = 'node'
                """, database: name)
            let node = try await PostgresNodeDatabase.open(database)
            try await server.sql("""
                DO $$ BEGIN IF (SELECT version FROM hawser_schema WHERE component = 'node') <> 8 THEN RAISE EXCEPTION 'not upgraded'; END IF; END $$
                """, database: name)
            #expect(try await node.flows.setting("partitions", proposing: "4") == "4")
            let start = FlowRecord(id: FlowID("a"), clientRequestId: "c-a", flowName: "F", arguments: [], attempts: 0,
                                   createdAt: Instant(microsecondsSinceEpoch: 1), updatedAt: Instant(microsecondsSinceEpoch: 1))
            #expect(try await node.flows.commit([.start(start)]) == [start])
            #expect(try await node.flows.record(FlowID("a")) == start)
            #expect(try await node.flows.enqueue([QueuedStart(FlowRecord(id: FlowID("b"), clientRequestId: nil, flowName: "F", arguments: [], attempts: 0,
                                                                         createdAt: start.createdAt, updatedAt: start.updatedAt), partition: 3)]).map(\.id)
                    == [FlowID("b")])
            #expect(try await node.flows.queued(in: [3], limit: 1).map(\.id) == [FlowID("b")])
            // A message of a session flow "a" opened.
            let message = InboxMessage(key: SessionMessageKey(session: "a/0", sender: "O=Bob", sequence: 1), body: [1])
            #expect(try await node.sessions.acceptInbound(message))
            #expect(try await node.sessions.inbound(message.key) == message)
            _ = try await PostgresNodeDatabase.open(database)
        }
    }

    /// Processes of the build before go on committing while a rolling upgrade runs: version 8
    /// adds its commit function beside version 7's instead of replacing it.
    @Test func anUpgradeFromVersionSevenKeepsItsCommitFunctionForTheProcessesStillRunningIt() async throws {
        try await withNodeDatabase { server, name, database in
            // Version 7's function, by its arguments (what it did is not the point here).
            try await server.sql("""
                DROP FUNCTION hawser_flow_commit; DROP TABLE notary_asks; UPDATE hawser_schema SET version = 7 WHERE component = 'node';
                CREATE FUNCTION hawser_flow_commit(
                    fence_resources text[], fence_epochs bigint[], refused text[],
                    start_id text[], start_key text[], start_has_key boolean[], start_name text[], start_arguments bytea[],
                    start_status text[], start_attempts bigint[], start_created bigint[], start_updated bigint[],
                    journal_flow text[], journal_sequence bigint[], journal_kind text[], journal_descriptor text[], journal_result bytea[],
                    consumed_flow text[], consumed_ref text[], consumed_tx text[],
                    produced_flow text[], produced_ref text[], produced_type text[], produced_owner text[], produced_data bytea[],
                    produced_amount bigint[], produced_has_amount boolean[],
                    released_flow text[], released_holder text[],
                    message_flow text[], message_ids text[], message_session text[], message_recipient text[], message_payload bytea[],
                    state_flow text[], state_status text[], state_result bytea[], state_has_result boolean[], state_error text[],
                    state_has_error boolean[], state_attempts bigint[], state_retry_at bigint[], state_has_retry boolean[],
                    state_updated bigint[],
                    compacted text[], compaction_keeps text, markers_set text[], markers_cleared text[])
                RETURNS TABLE (id text, client_request_id text, name text, arguments bytea, status text, result bytea, error text,
                               attempts bigint, retry_at bigint, created_at bigint, updated_at bigint)
                LANGUAGE sql AS 'SELECT NULL::text, NULL::text, NULL::text, NULL::bytea, NULL::text, NULL::bytea, NULL::text,
                                        NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint WHERE false'
                """, database: name)
            let node = try await PostgresNodeDatabase.open(database)
            try await server.sql("""
                DO $$ BEGIN
                    IF (SELECT version FROM hawser_schema WHERE component = 'node') <> 8 THEN RAISE EXCEPTION 'not upgraded'; END IF;
                    IF (SELECT count(*) FROM pg_proc WHERE proname = 'hawser_flow_commit') <> 2 THEN RAISE EXCEPTION 'not beside'; END IF;
                END $$
                """, database: name)
            let start = FlowRecord(id: FlowID("a"), clientRequestId: nil, flowName: "F", arguments: [], attempts: 0,
                                   createdAt: Instant(microsecondsSinceEpoch: 1), updatedAt: Instant(microsecondsSinceEpoch: 1))
            _ = try await node.flows.commit([.start(start), .notaryAsked(start.id)])
            #expect(try await node.flows.hasAskedNotary(start.id))
        }
    }
}
