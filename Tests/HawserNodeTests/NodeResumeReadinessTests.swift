import Flows
import Foundation
import HawserNode
import HawserTestSupport
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
        let away = try NATSCluster.freePorts(1)[0]  // nothing listens there: the notary is away
        let dir = try TemporaryDirectory()
        try writeRemoteNodeFiles(in: dir.path, urls: ["http://127.0.0.1:\(away)"]) { configuration in
            configuration.database.kind = .postgres
            configuration.database.url = databaseURL
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

        // The next run finds it, and its engine's reads wait for the lock on the journal.
        let (second, _) = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        let lock = try TableLock(url: databaseURL, table: "journal")
        defer { lock.release() }
        try await eventually("the lock on the journal") { try await locks(server, database, granted: true) > 0 }
        try await second.test(.router) { client in
            try await eventually("the engine waiting for the journal") { try await locks(server, database, granted: false) > 0 }
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

    /// How many locks on the journal table of `database` are granted (or waited for).
    func locks(_ server: PostgresServer, _ database: String, granted: Bool) async throws -> Int {
        let rows = try await server.rows("""
            SELECT count(*) FROM pg_locks l JOIN pg_class c ON l.relation = c.oid
            WHERE c.relname = 'journal' AND l.granted = \(granted)
            """, database: database)
        return Int(rows.first?.first ?? "") ?? 0
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
            input = Pipe()
            process.standardInput = input
            process.standardOutput = FileHandle.nullDevice
            try process.run()
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
}
