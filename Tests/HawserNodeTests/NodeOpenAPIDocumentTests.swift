import Foundation
import Flows
import HawserCore
@testable import HawserNode
import Hummingbird
import HummingbirdTesting
import Testing
import TokenSample

/// Keeps docs/node-openapi.json and the node's RPC API in step: the same routes, the same error
/// codes, and real responses whose statuses are documented.
@Suite(.timeLimit(.minutes(10))) struct NodeOpenAPIDocumentTests {
    nonisolated(unsafe) static let document: [String: Any] = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try! Data(contentsOf: root.appendingPathComponent("docs/node-openapi.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()
    static var paths: [String: [String: Any]] { document["paths"] as! [String: [String: Any]] }

    @Test func isOpenAPI31() {
        #expect(Self.document["openapi"] as? String == "3.1.0")
    }

    @Test func theNodeCompilesInThisDocument() {
        // `Sources/HawserNode/node-openapi.json` links to docs/node-openapi.json, so the two are one file.
        #expect(NodeOpenAPI.base.object?["openapi"] == .string("3.1.0"))
        #expect(NodeOpenAPI.base.object?["paths"]?.object?.count == (Self.document["paths"] as? [String: Any])?.count)
    }

    @Test func documentsExactlyTheRoutesTheNodeServes() {
        let documented = Set(Self.paths.flatMap { path, ops in ops.keys.map { "\($0.uppercased()) \(path)" } })
        let served = Set(Node.routes.map { "\($0.method) \($0.path)" })
        #expect(documented == served)
    }

    @Test func documentsExactlyTheQueryParametersOfEachRoute() {
        for route in Node.routes {
            #expect(documentedQueryParameters(Self.paths[route.path]?[route.method.lowercased()]) == route.query,
                    "\(route.method) \(route.path)")
        }
    }

    @Test func documentsExactlyTheErrorCodes() {
        let schemas = (Self.document["components"] as! [String: Any])["schemas"] as! [String: Any]
        let documented = (schemas["ErrorCode"] as! [String: Any])["enum"] as! [String]
        #expect(documented.sorted() == NodeErrorCode.allCases.map(\.rawValue).sorted())
    }

    @Test func realResponsesHaveDocumentedStatuses() async throws {
        let requests: [(path: String, uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?)] = [
            ("/v1/flows", "/v1/flows", .post, ops, startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":3}", clientRequestId: "doc")),
            ("/v1/flows", "/v1/flows", .post, ops, startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":3}", clientRequestId: "doc")),
            ("/v1/flows", "/v1/flows", .post, ops, startBody("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":4}", clientRequestId: "doc")),
            ("/v1/flows", "/v1/flows", .post, ops, startBody("IssueTokens", "{\"owner\":\"O=Nobody\",\"amount\":4}")),
            ("/v1/flows", "/v1/flows", .post, ops, startBody("Nope", "{}")),
            ("/v1/flows", "/v1/flows", .post, [:], startBody("Nope", "{}")),
            ("/v1/flows", "/v1/flows", .post, viewer, startBody("Nope", "{}")),
            ("/v1/flows", "/v1/flows", .get, viewer, nil),
            ("/v1/flows", "/v1/flows?limit=0", .get, viewer, nil),
            ("/v1/flows", "/v1/flows?flow=IssueTokens&clientRequestId=doc&since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z", .get, viewer, nil),
            ("/v1/flows", "/v1/flows?since=yesterday", .get, viewer, nil),
            ("/v1/flows/{id}", "/v1/flows/none", .get, viewer, nil),
            ("/v1/flows/by-client-id/{clientRequestId}", "/v1/flows/by-client-id/doc", .get, viewer, nil),
            ("/v1/flows/{id}/kill", "/v1/flows/none/kill", .post, ops, nil),
            ("/v1/flows/{id}/resume", "/v1/flows/none/resume", .post, ops, nil),
            ("/v1/vault", "/v1/vault?consumption=all", .get, ops, nil),
            ("/v1/vault", "/v1/vault?consumption=maybe", .get, ops, nil),
            ("/v1/vault", "/v1/vault?order=desc&after=7", .get, ops, nil),
            ("/v1/vault/balances", "/v1/vault/balances?type=token", .get, ops, nil),
            ("/v1/vault/balances", "/v1/vault/balances", .get, ops, nil),
            ("/v1/vault/balances", "/v1/vault/balances?type=token", .get, viewer, nil),
            ("/openapi.json", "/openapi.json", .get, [:], nil),
            ("/v1/node", "/v1/node", .get, viewer, nil),
            ("/v1/admin/draining", "/v1/admin/draining", .get, ops, nil),
            ("/v1/admin/draining", "/v1/admin/draining", .put, ops, ByteBuffer(string: "{\"draining\":false}")),
            ("/health/live", "/health/live", .get, [:], nil),
            ("/health/ready", "/health/ready", .get, [:], nil),
            ("/metrics", "/metrics", .get, [:], nil),
        ]
        try await withNode { client, _ in
            for r in requests {
                try await client.execute(uri: r.uri, method: r.method, headers: r.headers, body: r.body) { (response: TestResponse) async throws in
                    let operation = Self.paths[r.path]?[r.method.rawValue.lowercased()] as? [String: Any]
                    let responses = operation?["responses"] as? [String: Any] ?? [:]
                    #expect(responses["\(response.status.code)"] != nil,
                            "\(r.method) \(r.uri) answered \(response.status.code), which is not documented")
                }
            }
        }
    }
}

/// The names of an OpenAPI operation's query parameters.
func documentedQueryParameters(_ operation: Any?) -> Set<String> {
    let parameters = (operation as? [String: Any])?["parameters"] as? [[String: Any]] ?? []
    return Set(parameters.filter { $0["in"] as? String == "query" }.compactMap { $0["name"] as? String })
}

/// docs/node-openapi.json's flow argument schemas are the ones the node serves (without the
/// party names, which the node adds per call): a client generated from the file alone once
/// read that `amount` may be negative and that unknown fields are ignored, while the node
/// refuses both, and found no schema for `SwapTokens`.
@Suite struct NodeOpenAPIArgumentSchemaTests {
    @Test func theFilesArgumentSchemasAreTheServedOnes() throws {
        var registry = FlowRegistry()
        TokenSample.register(into: &registry)
        let schemas = NodeOpenAPI.base.object?["components"]?.object?["schemas"]?.object ?? [:]
        for name in registry.names {
            let expected = try #require(registry.schema(of: name)).jsonSchema(parties: nil)
            #expect(schemas[name + "Arguments"] == expected, "\(name)Arguments should be \(String(decoding: expected.bytes, as: UTF8.self))")
        }
        let documented = Set(schemas.keys.filter { $0.hasSuffix("Arguments") })
        #expect(documented == Set(registry.names.map { $0 + "Arguments" }))
    }
}
