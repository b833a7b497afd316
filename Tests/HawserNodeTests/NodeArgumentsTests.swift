import Flows
import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// Flow arguments and numbers through the RPC API: exact integers end to end, arguments checked
/// against the flow's schema before a flow is created, one request per client request id, and
/// the vault's pages and balances.
@Suite(.timeLimit(.minutes(10))) struct NodeArgumentsTests {
    func start(_ client: some TestClientProtocol, _ flow: String, _ arguments: String, id: String? = nil, wait: Bool = false)
        async throws -> (HTTPResponse.Status, String) {
        try await client.execute(uri: "/v1/flows" + (wait ? "?wait=30" : ""), method: .post, headers: ops,
                                 body: startBody(flow, arguments, clientRequestId: id)) { response in
            (response.status, String(buffer: response.body))
        }
    }

    func get(_ client: some TestClientProtocol, _ uri: String) async throws -> (HTTPResponse.Status, String) {
        try await client.execute(uri: uri, method: .get, headers: ops) { response in (response.status, String(buffer: response.body)) }
    }

    @Test func integersStayExactEndToEnd() async throws {
        try await withNode { client, _ in
            for amount in ["9007199254740993", "123456789012345678"] {
                let (status, body) = try await start(client, "IssueTokens", #"{"owner":"O=Alice","amount":\#(amount)}"#, wait: true)
                #expect(status == .created)
                #expect(body.contains(#""arguments":{"amount":\#(amount),"owner":"O=Alice"}"#), "\(body)")
                #expect(body.contains(#""status":"completed""#))
            }
            let (_, vault) = try await get(client, "/v1/vault?type=token")
            for amount in ["9007199254740993", "123456789012345678"] {
                #expect(vault.contains(#""amount":\#(amount),"data":{"amount":\#(amount),"owner":"O=Alice"}"#), "\(vault)")
            }
            let (_, balances) = try await get(client, "/v1/vault/balances?type=token")
            #expect(balances == #"{"balances":[{"amount":132463988267086671,"owner":"O=Alice","states":2,"type":"token"}]}"#)
            let decoded = try JSONDecoder().decode(VaultBalancesJSON.self, from: Data(balances.utf8))
            #expect(decoded.balances.map(\.amount) == [JSONNumber(text: "132463988267086671")!])
        }
    }

    @Test func argumentsAreCheckedBeforeAFlowIsCreated() async throws {
        try await withNode { client, parts in
            let refused: [(String, String, String)] = [
                ("MoveTokens", #"{"owner":"O=Alice","newOwner":"O=Nobody","amount":5}"#, "unknown_party"),
                ("IssueTokens", #"{"owner":"O=Nobody","amount":5}"#, "unknown_party"),
                ("IssueTokens", #"{"owner":"O=Alice","amount":-5}"#, "invalid_flow_arguments"),
                ("IssueTokens", #"{"owner":"O=Alice","amount":0}"#, "invalid_flow_arguments"),
                ("IssueTokens", #"{"owner":"O=Alice","amount":2.5}"#, "invalid_flow_arguments"),
                ("IssueTokens", #"{"owner":"O=Alice","amount":9223372036854775808}"#, "invalid_flow_arguments"),
                ("IssueTokens", #"{"owner":"O=Alice"}"#, "invalid_flow_arguments"),
                ("IssueTokens", #"{"owner":"O=Alice","amount":5,"amonut":5}"#, "unknown_argument"),
                ("IssueTokens", #"[]"#, "invalid_flow_arguments"),
            ]
            for (flow, arguments, code) in refused {
                let (status, body) = try await start(client, flow, arguments)
                #expect(status == .badRequest, "\(arguments)")
                #expect(body.contains(#""code":"\#(code)""#), "\(arguments): \(body)")
            }
            // Members of the request itself are checked too.
            try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                     body: ByteBuffer(string: #"{"flow":"IssueTokens","arguments":{},"clientRequestID":"x"}"#)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains(#""code":"unknown_field""#))
            }
            #expect(try await parts.engine.list().isEmpty, "a refused start must start nothing")
        }
    }

    @Test func aClientRequestIdNamesOneRequest() async throws {
        try await withNode { client, parts in
            let (created, _) = try await start(client, "IssueTokens", #"{"owner":"O=Alice","amount":3}"#, id: "order-1")
            #expect(created == .created)
            let (same, _) = try await start(client, "IssueTokens", #"{"amount":3,"owner":"O=Alice"}"#, id: "order-1")
            #expect(same == .ok)
            for (flow, arguments) in [("IssueTokens", #"{"owner":"O=Alice","amount":4}"#),
                                      ("MoveTokens", #"{"owner":"O=Alice","newOwner":"O=Bob","amount":3}"#)] {
                for wait in [false, true] {
                    let (status, body) = try await start(client, flow, arguments, id: "order-1", wait: wait)
                    #expect(status == .conflict)
                    #expect(body.contains(#""code":"client_request_id_reused""#), "\(body)")
                }
            }
            for key in ["", String(repeating: "k", count: 201)] {
                let (status, body) = try await start(client, "IssueTokens", #"{"owner":"O=Alice","amount":3}"#, id: key)
                #expect(status == .badRequest)
                #expect(body.contains(#""code":"invalid_client_request_id""#))
            }
            #expect(try await parts.engine.list().count == 1)
        }
    }

    @Test func theVaultPagesWithACursorInEitherOrder() async throws {
        try await withNode { client, _ in
            for amount in 1...3 {
                _ = try await start(client, "IssueTokens", #"{"owner":"O=Alice","amount":\#(amount)}"#, wait: true)
            }
            func page(_ query: String) async throws -> VaultQueryResultJSON {
                let (status, body) = try await get(client, "/v1/vault?type=token&limit=2" + query)
                #expect(status == .ok)
                return try JSONDecoder().decode(VaultQueryResultJSON.self, from: Data(body.utf8))
            }
            for (order, amounts) in [("asc", [1, 2, 3]), ("desc", [3, 2, 1])] {
                let first = try await page("&order=\(order)")
                let next = try #require(first.next)
                let second = try await page("&order=\(order)&after=\(next)")
                #expect(second.next == nil)
                #expect((first.states + second.states).map(\.amount) == amounts.map { JSONNumber($0) })
            }
            for bad in ["/v1/vault?after=nowhere", "/v1/vault?order=sideways", "/v1/vault/balances"] {
                let (status, body) = try await get(client, bad)
                #expect(status == .badRequest)
                #expect(body.contains(#""code":"invalid_query""#))
            }
        }
    }

    @Test func theNodeServesItsOpenAPIDocumentWithItsAddressAndFlowSchemas() async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let (app, _) = try await Node.application(configuration: try NodeConfiguration.load(dir.path + "/node.json"),
                                            baseDirectory: dir.path, logger: quietLogger)
        try await app.test(.live) { client in
            try await client.execute(uri: "/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                let document = try JSONValue(parsing: Array(buffer: response.body))
                let port = try #require(client.port)
                #expect(document.object?["servers"] == .array([.object(["url": .string("http://127.0.0.1:\(port)")])]))
                let schemas = document.object?["components"]?.object?["schemas"]?.object
                let move = schemas?["MoveTokensArguments"]?.object
                #expect(move?["additionalProperties"] == .bool(false))
                #expect(move?["required"] == .array([.string("owner"), .string("newOwner"), .string("amount")]))
                let start = schemas?["StartFlow"]?.object
                #expect(start?["properties"]?.object?["flow"]?.object?["enum"]
                        == .array([.string("IssueTokens"), .string("MoveTokens"), .string("SwapTokens")]))
                if case .array(let branches)? = start?["oneOf"] { #expect(branches.count == 3) } else { Issue.record("no oneOf") }
                // Everything else is docs/node-openapi.json.
                #expect(document.object?["paths"] != nil)
                #expect(document.object?["openapi"] == .string("3.1.0"))
            }
        }
    }
}
