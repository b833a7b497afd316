import Foundation
import GRDB
import HawserCore
import HawserNode
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// A node is ready only while its database answers a read. A node whose `node.sqlite` was
/// corrupted answered every read with `SQLite error 26` while `/health/ready` said `ready`
/// (found from outside). Here the flows' table is renamed under the running node, and back.
@Suite(.timeLimit(.minutes(3))) struct DatabaseReadinessTests {
    /// Runs `body` with a single node, once ready, and its data directory.
    func withReadyNode(_ body: @Sendable (any TestClientProtocol, String) async throws -> Void) async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let data = dir.path + "/data"
        let configuration = try NodeConfiguration.load(dir.path + "/node.json")
        let (app, _) = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        try await app.test(.router) { client in
            try await eventually("the node ready") {
                try await client.execute(uri: "/health/ready", method: .get) { $0.status == .ok }
            }
            try await body(client, data)
        }
    }

    @Test func aNodeWhoseDatabaseCannotBeReadIsNotReady() async throws {
        try await withReadyNode { client, data in
            let other = try DatabaseQueue(path: data + "/node.sqlite")
            try await other.write { try $0.execute(sql: "ALTER TABLE flows RENAME TO flows_away") }
            try await client.execute(uri: "/health/ready", method: .get) { response in
                let body = String(buffer: response.body)
                #expect(response.status == .serviceUnavailable, "\(body)")
                #expect(body.contains(#""code":"not_ready""#) && body.contains("the node database does not answer a read")
                        && body.contains("flows"), "\(body)")
            }
            try await other.write { try $0.execute(sql: "ALTER TABLE flows_away RENAME TO flows") }
            try await client.execute(uri: "/health/ready", method: .get) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
            }
        }
    }

    /// The same for the embedded notary's store: while it cannot apply the log (a full disk, here
    /// its outcomes' table renamed), every notarisation times out; the node says so, and is ready
    /// again once the replica applies.
    @Test func aNodeWhoseEmbeddedNotaryCannotApplyIsNotReady() async throws {
        try await withReadyNode { client, data in
            let other = try DatabaseQueue(path: data + "/notary.sqlite")
            try await other.write { try $0.execute(sql: "ALTER TABLE outcomes RENAME TO outcomes_away") }
            try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                     body: startBody("IssueTokens", #"{"owner":"O=Alice","amount":5}"#)) { #expect($0.status == .created) }
            try await eventually("the node not ready, saying why") {
                try await client.execute(uri: "/health/ready", method: .get) { response in
                    response.status == .serviceUnavailable
                        && String(buffer: response.body).contains("the embedded notary: the replica's store cannot apply log entries")
                }
            }
            try await other.write { try $0.execute(sql: "ALTER TABLE outcomes_away RENAME TO outcomes") }
            try await eventually("the node ready again") {
                try await client.execute(uri: "/health/ready", method: .get) { $0.status == .ok }
            }
        }
    }
}
