import Flows
import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import PostgresStores
import Testing
import TokenSample
import Vault

/// The node's `database` section: checked before anything starts, and a node whose flows and
/// vault live in PostgreSQL.
@Suite(.timeLimit(.minutes(3)))
struct NodeDatabaseTests {
    @Test func theSectionIsCheckedAndNeverRepeatsAPassword() throws {
        func problems(_ json: String) throws -> [String] {
            let dir = try TemporaryDirectory()
            try writeNodeFiles(in: dir.path)
            var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path + "/node.json"))) as! [String: Any]
            object["database"] = try JSONSerialization.jsonObject(with: Data(json.utf8))
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: dir.path + "/node.json"))
            do {
                _ = try NodeConfiguration.load(dir.path + "/node.json")
                return []
            } catch let error as ConfigurationError {
                return error.problems
            }
        }
        #expect(try problems(#"{"kind": "sqlite"}"#).isEmpty)
        #expect(try problems(#"{"kind": "postgres", "url": "postgres://hawser@db.example:5433/ledger", "passwordFile": "pw"}"#).isEmpty)
        #expect(try problems(#"{"kind": "postgres"}"#) == [#"database.kind "postgres" needs database.url"#])
        #expect(try problems(#"{"kind": "postgres", "url": "http://db.example/ledger"}"#)
            == ["database.url must be postgres://user@host[:port]/database"])
        let secret = try problems(#"{"kind": "postgres", "url": "postgres://hawser:hunter2@db.example/ledger"}"#)
        #expect(secret == ["database.url must not hold a password: put it in database.passwordFile or HAWSER_NODE_DATABASE_PASSWORD"])
        #expect(try problems(#"{"kind": "sqlite", "url": "postgres://hawser@db.example/ledger"}"#)
            == [#"database.url and database.passwordFile are for database.kind "postgres""#])
        #expect(try problems(#"{"kind": "mysql"}"#).first?.contains(#"database.kind must be "sqlite" or "postgres""#) == true)
        #expect(try problems(#"{"kind": "postgres", "url": "postgres://h@x/y", "connectTimeoutMillis": 0, "maxConnections": 0, "requestTimeoutMillis": 999, "port": 1}"#)
            == ["unknown option `database.port`", "database.connectTimeoutMillis must be 100...600000", "database.maxConnections must be 1...100",
                "database.requestTimeoutMillis must be 1000...3600000"])
    }

    @Test(.enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"))
    func aNodeOnPostgreSQLRunsFlowsAndRefusesAWrongPassword() async throws {
        let server = try await PostgresServer.start(password: "right-horse")
        defer { server.stop() }
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        try Data("wrong-battery\n".utf8).write(to: URL(fileURLWithPath: dir.path + "/db-password"))
        var configuration = try NodeConfiguration.load(dir.path + "/node.json")
        configuration.database.kind = .postgres
        configuration.database.url = server.url
        configuration.database.passwordFile = "db-password"
        // A SCRAM login computes PBKDF2 on both sides, slow in a debug build on a busy machine.
        configuration.database.connectTimeoutMillis = 60_000
        let refused = await #expect(throws: StoreDatabaseError.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }
        #expect(refused?.code == .notAuthorized)
        #expect(refused?.description.contains("wrong-battery") == false)

        try Data("right-horse\n".utf8).write(to: URL(fileURLWithPath: dir.path + "/db-password"))
        let (app, parts) = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        try await app.test(.router) { client in
            for i in 0..<3 {
                let id = try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                                  body: startBody("IssueTokens", #"{"owner":"O=Alice","amount":5}"#, clientRequestId: "pg-\(i)")) {
                    (response: TestResponse) async throws in try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body)).id
                }
                #expect(try await parts.engine.waitForEnd(FlowID(id)).status == .completed)
            }
            #expect(try await parts.database.vault.balances(type: Token.stateType, owner: "O=Alice").map(\.amount) == [15])
            #expect(try await parts.database.flows.counts() == [.completed: 3])
        }
        // Nothing went to a node.sqlite.
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data/node.sqlite"))
    }

    @Test(.enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"))
    func whilePostgreSQLIsDownRequestsGetDatabaseUnavailableAndAStartIsSafeToRepeat() async throws {
        let server = try await PostgresServer.start(durableCommits: true)
        defer { server.stop() }
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        var configuration = try NodeConfiguration.load(dir.path + "/node.json")
        configuration.database.kind = .postgres
        configuration.database.url = server.url
        // Start-up connects within it on a loaded machine (8 s was not); it is also how long a
        // request waits for a connection while the server is down, which must stay below the test
        // client's read timeout (60 s was not).
        configuration.database.connectTimeoutMillis = 15_000
        let (app, parts) = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        let start = startBody("IssueTokens", #"{"owner":"O=Alice","amount":5}"#, clientRequestId: "while-down")
        // Live: the node runs its services, the database pool among them.
        try await app.test(.live) { client in
            // A flow first: the node serves (its engine's start-up reads are done) before the crash.
            let first = try await client.execute(uri: "/v1/flows?wait=30", method: .post, headers: ops,
                                                 body: startBody("IssueTokens", #"{"owner":"O=Alice","amount":5}"#, clientRequestId: "before")) {
                (response: TestResponse) async throws in try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body)).status
            }
            #expect(first == "completed")
            let metrics = { (client: any TestClientProtocol) async throws -> String in
                try await client.execute(uri: "/metrics", method: .get) { (response: TestResponse) async throws -> String in
                    #expect(response.status == .ok)
                    return String(buffer: response.body)
                }
            }
            let counted = try await metrics(client)
            #expect(counted.contains("hawser_flows_counted 1") && counted.contains("hawser_flows{status=\"completed\"} 1"), "\(counted)")
            try await server.crash()
            // The metrics are served all the same, with the counts of the last scrape.
            let uncounted = try await metrics(client)
            #expect(uncounted.contains("hawser_flows_counted 0") && uncounted.contains("hawser_flows{status=\"completed\"} 1"), "\(uncounted)")
            for (uri, method, body) in [("/v1/flows", HTTPRequest.Method.post, start), ("/v1/flows", .get, ByteBuffer())] {
                try await client.execute(uri: uri, method: method, headers: ops, body: body) { (response: TestResponse) async throws in
                    #expect(response.status == .serviceUnavailable)
                    #expect(response.headers[.retryAfter] == "1")
                    #expect(String(buffer: response.body).contains(#""code":"database_unavailable""#), "\(String(buffer: response.body))")
                }
            }
            try await server.startAgain()
            // The same start, repeated until the pool has connected again, starts one flow.
            var id: String?
            try await eventually("a start once the server is back", timeout: .seconds(120)) {
                id = try await client.execute(uri: "/v1/flows", method: .post, headers: ops, body: start) {
                    (response: TestResponse) async throws -> String? in
                    guard response.status == .created || response.status == .ok else { return nil }
                    return try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body)).id
                }
                return id != nil
            }
            #expect(try await parts.engine.waitForEnd(FlowID(try #require(id)), timeout: .seconds(60)).status == .completed)
            #expect(try await parts.database.flows.counts() == [.completed: 2])
        }
    }
}
