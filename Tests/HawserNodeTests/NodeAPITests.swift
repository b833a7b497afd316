import Flows
import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// Writes keys for the notary, Alice and Bob, and a configuration with three RPC users: `ops`
/// (everything), `viewer` (read flows only) and nobody else.
func writeNodeFiles(in directory: String) throws {
    try KeyFile(name: "O=Notary", key: notaryKey).save(directory + "/notary.key")
    try KeyFile(name: "O=Alice", key: alice).save(directory + "/alice.key")
    try KeyFile(name: "O=Bob", key: SigningKey(seed: [UInt8](repeating: 2, count: 32))!).save(directory + "/bob.key")
    var configuration = NodeConfiguration()
    configuration.listen.port = 0  // a free port: tests run side by side
    configuration.notaryName = "O=Notary"
    configuration.parties = [.init(name: "O=Alice", keyFile: "alice.key"), .init(name: "O=Bob", keyFile: "bob.key")]
    configuration.rpcUsers = [
        RPCUser(username: "ops", passwordHash: PasswordHash.make("secret", iterations: 100), permissions: [.all]),
        RPCUser(username: "viewer", passwordHash: PasswordHash.make("look", iterations: 100), permissions: [.readFlows]),
    ]
    try configuration.save(directory + "/node.json")
}

let ops: HTTPFields = [.authorization: RPCAuthenticator.basic(username: "ops", password: "secret"),
                       .contentType: "application/json"]
let viewer: HTTPFields = [.authorization: RPCAuthenticator.basic(username: "viewer", password: "look"),
                          .contentType: "application/json"]

func withNode<T: Sendable>(_ body: @Sendable (any TestClientProtocol, Node.Parts) async throws -> T) async throws -> T {
    let dir = try TemporaryDirectory()
    try writeNodeFiles(in: dir.path)
    let configuration = try NodeConfiguration.load(dir.path + "/node.json")
    let (app, parts) = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
    return try await app.test(.router) { client in try await body(client, parts) }
}

func startBody(_ flow: String, _ arguments: String, clientRequestId: String? = nil) -> ByteBuffer {
    let id = clientRequestId.map { ",\"clientRequestId\":\"\($0)\"" } ?? ""
    return ByteBuffer(string: "{\"flow\":\"\(flow)\",\"arguments\":\(arguments)\(id)}")
}

@Suite(.timeLimit(.minutes(10))) struct NodeAPITests {
    /// A node outside any network has no flow sessions: a swap, even between two of its parties,
    /// fails at once saying so. It was parked in the hospital, where an operator could do nothing.
    @Test func aSwapOnANodeOutsideAnyNetworkFailsSayingWhy() async throws {
        try await withNode { client, parts in
            for (owner, amount) in [("O=Alice", 30), ("O=Bob", 20)] {
                let issued = try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                                      body: startBody("IssueTokens", #"{"owner":"\#(owner)","amount":\#(amount)}"#)) { (response: TestResponse) async throws in
                    try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body))
                }
                #expect(try await parts.engine.waitForEnd(FlowID(issued.id)).status == .completed)
            }
            let swap = try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                                body: startBody("SwapTokens", #"{"owner":"O=Alice","counterparty":"O=Bob","give":30,"want":20}"#)) { (response: TestResponse) async throws in
                try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body))
            }
            let end = try await parts.engine.waitForEnd(FlowID(swap.id))
            #expect(end.status == .failed && end.error?.hasPrefix("a swap needs flow sessions") == true, "\(end.status) \(String(describing: end.error))")
        }
    }

    /// A client request id in the path is percent-decoded (it was taken as sent, so an id with a
    /// space, `/` or `?`, and every responder's `session:<flow>/<n>`, could not be found).
    @Test func aClientRequestIdInThePathIsPercentDecoded() async throws {
        try await withNode { client, _ in
            // The id is percent-decoded (it was taken as sent): a space, a slash, a question mark.
            let spaced = try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                                  body: startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":1}",
                                                                  clientRequestId: "order 7/a?b")) { (response: TestResponse) async throws in
                try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body))
            }
            try await client.execute(uri: "/v1/flows/by-client-id/order%207%2Fa%3Fb", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body)).id == spaced.id)
            }
            // A `%` that begins no escape of UTF-8 text is refused, not read as sent: `%FF` found
            // the flow whose id is the text `%FF` (found from outside).
            _ = try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                         body: startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":1}",
                                                         clientRequestId: "%FF")) { (response: TestResponse) async throws in
                #expect(response.status == .created)
            }
            // So is one in a query value, which listed nothing (`?type=%zz`: 200, no states).
            for path in ["/v1/flows/by-client-id/%FF", "/v1/flows/by-client-id/%ZZ", "/v1/flows/%FF", "/v1/flows/%ZZ/events",
                         "/v1/vault?type=%zz", "/v1/vault?type=%", "/v1/vault/balances?type=%FFtoken", "/v1/flows?clientRequestId=%FF",
                         // A NUL, which nothing holds: PostgreSQL failed the lookup, answered 503 `database_unavailable`.
                         "/v1/flows/by-client-id/a%00", "/v1/flows/a%00", "/v1/vault?owner=a%00", "/v1/flows?after=a%00"] {
                try await client.execute(uri: path, method: .get, headers: viewer) { (response: TestResponse) async throws in
                    #expect(response.status == .badRequest && String(buffer: response.body).contains("\"code\":\"malformed_request\""),
                            "\(path): \(response.status) \(String(buffer: response.body))")
                }
            }
            try await client.execute(uri: "/v1/flows/by-client-id/%25FF", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(response.status == .ok, "the id `%FF` itself, its `%` escaped")
            }
        }
    }

    @Test func startsAFlowAndReportsItsResultProgressAndVault() async throws {
        try await withNode { client, parts in
            let flow = try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                                body: startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":40}",
                                                                clientRequestId: "issue-1")) { (response: TestResponse) async throws in
                #expect(response.status == .created)
                return try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body))
            }
            #expect(try await parts.engine.waitForEnd(FlowID(flow.id)).status == .completed)
            // Starting again with the same client request id returns the same flow.
            try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                     body: startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":40}",
                                                     clientRequestId: "issue-1")) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body)).id == flow.id)
            }
            // Path segments are percent-decoded, the flow id's as any (node.md).
            let encoded = flow.id.replacingOccurrences(of: "-", with: "%2D")
            try await client.execute(uri: "/v1/flows/\(encoded)", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
            }
            try await client.execute(uri: "/v1/flows/\(flow.id)", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let got = try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body))
                #expect(got.status == "completed")
                guard case .object(let result) = got.result, case .string(let txId) = result["txId"] else {
                    Issue.record("the result has no txId")
                    return
                }
                #expect(txId.count == 64)
            }
            try await client.execute(uri: "/v1/flows/by-client-id/issue-1", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body)).id == flow.id)
            }
            try await client.execute(uri: "/v1/flows/\(flow.id)/events", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(response.headers[.contentType] == "text/event-stream")
                let text = String(buffer: response.body)
                #expect(text.contains("id: 0\nevent: progress\ndata: {\"flowId\":\"\(flow.id)\",\"sequence\":0,\"step\":\"building\"}"))
                #expect(text.hasSuffix("id: 7:completed:0\nevent: status\ndata: {\"attempts\":0,\"flowId\":\"\(flow.id)\",\"status\":\"completed\"}\n\n"))
            }
            try await client.execute(uri: "/v1/vault?type=token&owner=O%3DAlice", method: .get, headers: ops) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let states = try JSONDecoder().decode(VaultQueryResultJSON.self, from: Data(buffer: response.body)).states
                #expect(states.count == 1)
                #expect(states.first?.data == .object(["owner": .string("O=Alice"), "amount": .number(40)]))
            }
            try await client.execute(uri: "/v1/flows?status=completed", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(try JSONDecoder().decode(FlowListJSON.self, from: Data(buffer: response.body)).flows.map(\.id) == [flow.id])
            }
        }
    }

    @Test func credentialsAndPermissionsAreEnforced() async throws {
        try await withNode { client, _ in
            try await client.execute(uri: "/v1/flows", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == "Basic realm=\"hawser\"")
                #expect(String(buffer: response.body).contains("\"code\":\"unauthenticated\""))
            }
            let wrong: HTTPFields = [.authorization: RPCAuthenticator.basic(username: "ops", password: "guess")]
            try await client.execute(uri: "/v1/flows", method: .get, headers: wrong) { (response: TestResponse) async throws in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/flows", method: .post, headers: viewer,
                                     body: startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":1}")) { (response: TestResponse) async throws in
                #expect(response.status == .forbidden)
                #expect(String(buffer: response.body).contains("lacks the startFlow permission"))
            }
            try await client.execute(uri: "/v1/vault", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/health/live", method: .get) { (response: TestResponse) async throws in #expect(response.status == .ok) }
            // A scrape counts the flows if the node database answers within 2 s; on a loaded
            // machine the first may not (`hawser_flows_counted 0`, no counts yet).
            var text = ""
            try await eventually("a scrape that counted the flows") {
                text = try await client.execute(uri: "/metrics", method: .get) { (response: TestResponse) async throws in
                    #expect(response.status == .ok)
                    return String(buffer: response.body)
                }
                return text.contains("\nhawser_flows_counted 1")
            }
            #expect(text.contains("hawser_flows{status=\"completed\"} "))
            #expect(text.contains("\nhawser_flows_draining 0"))
        }
    }

    @Test func badRequestsGetTheirCodes() async throws {
        try await withNode { client, _ in
            try await client.execute(uri: "/v1/flows", method: .post, headers: ops, body: startBody("Nope", "{}")) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("\"code\":\"unknown_flow\""))
            }
            try await client.execute(uri: "/v1/flows", method: .post, headers: ops, body: startBody("IssueTokens", "{\"owner\":1}")) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("\"code\":\"invalid_flow_arguments\""))
            }
            try await client.execute(uri: "/v1/flows", method: .post, headers: ops, body: ByteBuffer(string: "{")) { (response: TestResponse) async throws in
                #expect(String(buffer: response.body).contains("\"code\":\"malformed_request\""))
            }
            try await client.execute(uri: "/v1/flows/nope", method: .get, headers: ops) { (response: TestResponse) async throws in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("\"code\":\"flow_not_found\""))
            }
            try await client.execute(uri: "/v1/flows?status=sleeping", method: .get, headers: ops) { (response: TestResponse) async throws in
                #expect(String(buffer: response.body).contains("\"code\":\"invalid_query\""))
            }
            try await client.execute(uri: "/v1/flows", method: .delete, headers: ops) { (response: TestResponse) async throws in
                #expect(response.status == .methodNotAllowed)
            }
            // An empty key: no such resource, not a method the path would not take (found from
            // outside: 405 "GET is not allowed ...; use GET").
            try await client.execute(uri: "/v1/flows/by-client-id/", method: .get, headers: ops) { (response: TestResponse) async throws in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("\"code\":\"not_found\""), "\(String(buffer: response.body))")
            }
        }
    }

    @Test func waitAnswersWithTheEndedFlowAndABadWaitStartsNothing() async throws {
        try await withNode { client, parts in
            for wait in ["0", "61", "soon"] {
                try await client.execute(uri: "/v1/flows?wait=\(wait)", method: .post, headers: ops,
                                         body: startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":3}")) { (response: TestResponse) async throws in
                    #expect(response.status == .badRequest)
                    #expect(String(buffer: response.body).contains("\"code\":\"invalid_query\""))
                }
            }
            #expect(try await parts.engine.list().isEmpty, "a refused start must start nothing")
            let flow = try await client.execute(uri: "/v1/flows?wait=30", method: .post, headers: ops,
                                                body: startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":3}")) { (response: TestResponse) async throws in
                #expect(response.status == .created)
                return try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body))
            }
            #expect(flow.status == "completed")
            #expect(flow.result != nil)
            // A waiting start whose client request id was used answers with that flow.
            let body = startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":3}", clientRequestId: "order-7")
            var ids = [String]()
            for expected in [HTTPResponse.Status.created, .ok] {
                try await client.execute(uri: "/v1/flows?wait=30", method: .post, headers: ops, body: body) { (response: TestResponse) async throws in
                    #expect(response.status == expected)
                    let found = try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body))
                    #expect(found.status == "completed")
                    ids.append(found.id)
                }
            }
            #expect(ids.count == 2 && ids[0] == ids[1])
            try await client.execute(uri: "/v1/flows/\(flow.id)?wait=30", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body)).status == "completed")
            }
            try await client.execute(uri: "/v1/flows/\(flow.id)?wait=x", method: .get, headers: viewer) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test func drainingRefusesNewFlowsAndKillEndsOnlyLiveOnes() async throws {
        try await withNode { client, parts in
            let flow = try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                                body: startBody("MoveTokens", "{\"owner\":\"O=Alice\",\"newOwner\":\"O=Bob\",\"amount\":5}")) { (response: TestResponse) async throws in
                try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body))
            }
            #expect(try await parts.engine.waitForEnd(FlowID(flow.id)).status == .failed)
            try await client.execute(uri: "/v1/flows/\(flow.id)/kill", method: .post, headers: ops) { (response: TestResponse) async throws in
                #expect(response.status == .conflict)
                #expect(String(buffer: response.body).contains("\"code\":\"flow_finished\""))
            }
            try await client.execute(uri: "/v1/admin/draining", method: .put, headers: ops,
                                     body: ByteBuffer(string: "{\"draining\":true}")) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                     body: startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":1}")) { (response: TestResponse) async throws in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("\"code\":\"draining\""))
            }
            try await client.execute(uri: "/health/ready", method: .get) { (response: TestResponse) async throws in
                #expect(String(buffer: response.body).contains("draining"))
            }
        }
    }

    @Test func configurationProblemsAreReported() throws {
        var configuration = NodeConfiguration()
        #expect(configuration.problems.contains("parties is empty: flows would have nobody to act for"))
        configuration.rpcUsers = [RPCUser(username: "a", passwordHash: "plain", permissions: [])]
        #expect(configuration.problems.contains { $0.contains("passwordHash of `a`") })
        #expect(configuration.problems.contains("rpcUsers: `a` has no permissions"))
        configuration.hospital.initialDelayMillis = 0
        #expect(configuration.problems.contains("hospital.initialDelayMillis must be 1...86400000 (a day)"))
        // Beyond a day: refused (2^63 ms passed before and would overflow the retry's clock reading).
        configuration.hospital.initialDelayMillis = 100
        configuration.hospital.maxDelayMillis = .max
        configuration.sessions.timeoutMillis = .max
        #expect(configuration.problems.contains("hospital.maxDelayMillis must be hospital.initialDelayMillis...86400000 (a day)"))
        #expect(configuration.problems.contains("sessions.timeoutMillis must be 1...86400000 (a day)"))
    }

    @Test func concurrentFirstRequestsWithOneHeaderCheckThePasswordOnce() async {
        let user = RPCUser(username: "ops", passwordHash: PasswordHash.make("secret", iterations: 1_000), permissions: [.all])
        let authenticator = RPCAuthenticator(users: [user])
        let header = RPCAuthenticator.basic(username: "ops", password: "secret")
        let names = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<16 { group.addTask { await authenticator.authenticate(authorization: header, source: "a").username } }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(names == Array(repeating: "ops", count: 16))
        #expect(authenticator.passwordChecks == 1)
        #expect(await authenticator.authenticate(authorization: header, source: "a").username == "ops")
        #expect(await authenticator.authenticate(authorization: RPCAuthenticator.basic(username: "ops", password: "guess"), source: "a") == .rejected)
        #expect(authenticator.passwordChecks == 2)
    }

    @Test func passwordHashesVerifyOnlyTheirPassword() {
        let hash = PasswordHash(PasswordHash.make("secret", iterations: 10))!
        #expect(hash.verify("secret"))
        #expect(!hash.verify("Secret"))
        #expect(PasswordHash("sha256:10:c2FsdA==:AAAA") == nil)
        // More rounds than the hash function takes: refused when read (checking the password
        // with it trapped, taking the node down at the first login).
        #expect(PasswordHash("pbkdf2-sha256:99999999999:c2FsdHNhbHQ=:j0Xr2TDUGb2ExAqHE9c43F1b6VtmN1HehzWI9wkQpsQ=") == nil)
        #expect(PasswordHash("pbkdf2-sha256:\(PasswordHash.maxIterations + 1):c2FsdHNhbHQ=:j0Xr2TDUGb2ExAqHE9c43F1b6VtmN1HehzWI9wkQpsQ=") == nil)
        // PBKDF2-HMAC-SHA256("password", "saltsalt", 2 rounds), as Python's hashlib computes it.
        let known = PasswordHash("pbkdf2-sha256:2:c2FsdHNhbHQ=:j0Xr2TDUGb2ExAqHE9c43F1b6VtmN1HehzWI9wkQpsQ=")
        #expect(known?.verify("password") == true)
        #expect(known?.verify("passwore") == false)
    }
}

extension RPCAuthenticator.Outcome {
    var username: String? {
        if case .authenticated(let user) = self { user.username } else { nil }
    }
}
