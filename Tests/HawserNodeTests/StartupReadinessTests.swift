import Flows
import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import HawserWire
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// A single-mode node is not ready while it resumes the unfinished flows it found at start-up:
/// its start-up read of the journal is held by a lock another session keeps on the table.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root"), PostgresTrait(),
       .timeLimit(.minutes(3)))
struct NodeResumeReadinessTests {
    @Test func aNodeIsNotReadyUntilItHasResumedItsUnfinishedFlows() async throws {
        let server = try #require(PostgresTrait.current)
        let databaseURL = try await server.createDatabase()
        let database = String(databaseURL.split(separator: "/").last!)
        let away = try FreePorts.take(1)[0]  // nothing listens there: the notary is away
        let dir = try TemporaryDirectory()
        try writeRemoteNodeFiles(in: dir.path, urls: ["http://127.0.0.1:\(away)"]) { configuration in
            configuration.database.kind = .postgres
            configuration.database.url = databaseURL
            // Start-up's schema work on a fresh database took over the default 10 s once, beside
            // the other node tests on a loaded machine; the readiness is tested here, not the bound.
            configuration.database.connectTimeoutMillis = 60_000
            configuration.notary.maxAttempts = 1
            // The flow waits in the hospital, unfinished, for the rest of the test.
            configuration.hospital.initialDelayMillis = 600_000
            configuration.hospital.maxDelayMillis = 600_000
        }
        let configuration = try NodeConfiguration.load(dir.path + "/node.json")

        // A first run leaves a flow unfinished.
        let (first, parts) = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        try await first.test(.router) { client in
            let id = try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                              body: startBody("IssueTokens", #"{"owner":"O=Alice","amount":5}"#)) {
                (response: TestResponse) async throws in try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body)).id
            }
            try await eventually("the flow in the hospital") { try await parts.database.flows.record(FlowID(id))?.status == .hospitalised }
        }

        // The first run's services stop after `test` returns, its data directory's lock last: the
        // next run started sooner found the directory in use (once, in the full suite).
        try await eventually("the first run let its data directory go") {
            guard let probe = try? DataDirectoryLock(directory: dir.path + "/data") else { return false }
            probe.release()
            return true
        }
        // The next run finds it, and its engine's reads wait for the lock on the journal.
        let (second, _) = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        let lock = try TableLock(url: databaseURL, table: "journal")
        defer { lock.release() }
        try await eventually("the lock on the journal") { try await server.locks(on: "journal", in: database, granted: true) > 0 }
        try await second.test(.router) { client in
            try await eventually("the engine waiting for the journal") { try await server.locks(on: "journal", in: database, granted: false) > 0 }
            try await client.execute(uri: "/health/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = String(buffer: response.body)
                #expect(body.contains("\"code\":\"not_ready\"") && body.contains("resuming the unfinished flows at start-up"), "\(body)")
            }
            lock.release()
            try await eventually("the node ready") {
                try await client.execute(uri: "/health/ready", method: .get) { $0.status == .ok }
            }
        }
    }
}

/// A single-mode notary is not ready while its replica applies the log as it stood at start-up:
/// its store is emptied (to be rebuilt from the log, as docs/configuration.md describes) and its
/// replica's apply is held by a lock another session keeps on the spent states' table.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root"), PostgresTrait(),
       .timeLimit(.minutes(3)))
struct NotaryReplayReadinessTests {
    @Test func aNotaryIsNotReadyUntilItHasAppliedItsLog() async throws {
        let server = try #require(PostgresTrait.current)
        let dir = try TemporaryDirectory()
        let (configuration, database) = try await writePostgresNotaryFiles(in: dir.path, server: server)
        let txIds = (0..<3).map { SecureHash.sha256(Array("replayed-\($0)".utf8)) }

        // A first run notarises three transactions (three log entries).
        let (first, _) = try await NotaryNode.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        try await first.test(.router) { client in
            for (i, txId) in txIds.enumerated() {
                let request = signed(txId, inputs: [StateRef(txId: .sha256(Array("input-\(i)".utf8)), index: 0)])
                try await client.execute(uri: "/v1/notarise", method: .post, headers: jsonHeaders,
                                         body: json(NotarisationRequestJSON(request))) { #expect($0.status == .ok) }
            }
        }
        try await server.sql("""
            TRUNCATE notary_spent, notary_outcomes;
            UPDATE notary_applied SET position = 0, entry_hash = decode(repeat('00', 32), 'hex'), state_hash = decode(repeat('00', 32), 'hex');
            """, database: database)

        let (second, _) = try await NotaryNode.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        let lock = try TableLock(url: configuration.database.url!, table: "notary_spent")
        defer { lock.release() }
        try await eventually("the lock on the spent states") { try await server.locks(on: "notary_spent", in: database, granted: true) > 0 }
        try await second.test(.router) { client in
            try await eventually("the replica waiting for the spent states") {
                try await server.locks(on: "notary_spent", in: database, granted: false) > 0
            }
            try await client.execute(uri: "/health/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = String(buffer: response.body)
                #expect(body.contains("\"code\":\"not_ready\"") && body.contains("still catching up with the log"), "\(body)")
            }
            lock.release()
            try await eventually("the notary ready") {
                try await client.execute(uri: "/health/ready", method: .get) { $0.status == .ok }
            }
            for txId in txIds {
                try await client.execute(uri: "/v1/transactions/\(txId.hex)", method: .get) { response in
                    #expect(response.status == .ok && String(buffer: response.body).contains("\"committed\""), "the store was rebuilt from the log")
                }
            }
        }
    }
}

extension PostgresServer {
    /// How many locks on `table` of `database` are granted (or waited for).
    func locks(on table: String, in database: String, granted: Bool) async throws -> Int {
        let rows = try await rows("""
            SELECT count(*) FROM pg_locks l JOIN pg_class c ON l.relation = c.oid
            WHERE c.relname = '\(table)' AND l.granted = \(granted)
            """, database: database)
        return Int(rows.first?.first ?? "") ?? 0
    }
}

/// A `psql` session holding an exclusive lock on a table until `release()` (or until dropped).
final class TableLock: Sendable {
    private let process: Process
    private let input: Pipe
    private let released = Mutex(false)
    private let guardian: ProcessWatchdog

    init(url: String, table: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: PostgresServer.bin + "/psql")
        process.arguments = [url, "-q", "-v", "ON_ERROR_STOP=1"]
        process.standardOutput = FileHandle.nullDevice
        input = try ChildProcesses.start { [process] in
            let input = Pipe()
            process.standardInput = input
            try process.run()
            return input
        }
        guardian = try ProcessWatchdog(killing: [process.processIdentifier])
        input.fileHandleForWriting.write(Data("BEGIN;\nLOCK TABLE \(table) IN ACCESS EXCLUSIVE MODE;\n".utf8))
    }

    /// Ends the session's transaction (the lock with it) and the session.
    func release() {
        guard released.withLock({ was in defer { was = true }; return !was }) else { return }
        input.fileHandleForWriting.write(Data("COMMIT;\n".utf8))
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        guardian.stop()
    }

    deinit { release() }
}
