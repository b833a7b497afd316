import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import HawserWire
import Hummingbird
import HummingbirdTesting
import Testing

/// A notary on PostgreSQL whose server goes away while it serves: a lookup, which reads the
/// store, is answered 503 `database_unavailable` with `Retry-After: 1`, as the node's requests
/// are, and answers again once the server is back. It was 500 `internal_error` ("failed to handle
/// the request"), which a client must not retry. Its readiness says `not_ready` meanwhile; it
/// said `ready`.
@Suite(.enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"),
       .timeLimit(.minutes(5)))
struct NotaryDatabaseOutageTests {
    @Test func whilePostgreSQLIsDownALookupIsDatabaseUnavailable() async throws {
        let server = try await PostgresServer.start(durableCommits: true)
        defer { server.stop() }
        let dir = try TemporaryDirectory()
        try writeNotaryFiles(in: dir.path) { configuration in
            configuration.database.kind = .postgres
            configuration.database.url = server.url
            // How long a read waits for a connection while the server is down: below the test
            // client's read timeout, and long enough for start-up on a loaded machine.
            configuration.database.connectTimeoutMillis = 15_000
        }
        let configuration = try NotaryConfiguration.load(dir.path + "/hawser.json")
        let txId = SecureHash.sha256(Array("looked-up-while-down".utf8))
        let request = signed(txId, inputs: [StateRef(txId: .sha256(Array("its-input".utf8)), index: 0)])
        let (app, _) = try await NotaryNode.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        try await app.test(.live) { client in
            try await client.execute(uri: "/v1/notarise", method: .post, headers: jsonHeaders,
                                     body: json(NotarisationRequestJSON(request))) { #expect($0.status == .ok) }
            try await server.crash()
            for uri in ["/v1/transactions/\(txId.hex)", "/v1/digest"] {
                try await client.execute(uri: uri, method: .get) { response in
                    let body = String(buffer: response.body)
                    #expect(response.status == .serviceUnavailable, "\(uri): \(body)")
                    #expect(response.headers[.retryAfter] == "1", "\(uri)")
                    #expect(body.contains(#""code":"database_unavailable""#), "\(uri): \(body)")
                }
            }
            // Nor is it ready: it said ready for the whole outage.
            try await client.execute(uri: "/health/ready", method: .get) { response in
                let body = String(buffer: response.body)
                #expect(response.status == .serviceUnavailable, "\(body)")
                #expect(body.contains(#""code":"not_ready""#) && body.contains("does not answer a read"), "\(body)")
            }
            try await server.startAgain()
            try await eventually("the lookup answered once the server is back", timeout: .seconds(120)) {
                try await client.execute(uri: "/v1/transactions/\(txId.hex)", method: .get) { response in
                    response.status == .ok && String(buffer: response.body).contains(#""committed""#)
                }
            }
            try await eventually("ready again") {
                try await client.execute(uri: "/health/ready", method: .get) { $0.status == .ok }
            }
        }
    }
}
