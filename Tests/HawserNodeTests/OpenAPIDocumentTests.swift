import Foundation
import HawserCore
import HawserNode
import HawserWire
import Hummingbird
import HummingbirdTesting
import HawserTestSupport
import Testing

/// Keeps docs/openapi.json and the server in step: the same routes, the same error codes, and
/// real responses that match the documented statuses and schemas.
@Suite(.timeLimit(.minutes(10))) struct OpenAPIDocumentTests {
    nonisolated(unsafe) static let document: [String: Any] = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try! Data(contentsOf: root.appendingPathComponent("docs/openapi.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()
    static var paths: [String: [String: Any]] { document["paths"] as! [String: [String: Any]] }
    static var schemas: [String: Any] { (document["components"] as! [String: Any])["schemas"] as! [String: Any] }

    @Test func documentsExactlyTheRoutesTheServerServes() {
        let documented = Set(Self.paths.flatMap { path, ops in ops.keys.map { "\($0.uppercased()) \(path)" } })
        let served = Set(NotaryNode.routes.map { "\($0.method) \($0.path)" })
        #expect(documented == served)
    }

    @Test func documentsExactlyTheQueryParametersOfEachRoute() {
        for route in NotaryNode.routes {
            #expect(documentedQueryParameters(Self.paths[route.path]?[route.method.lowercased()]) == route.query,
                    "\(route.method) \(route.path)")
        }
    }

    @Test func documentsExactlyTheErrorCodes() {
        let documented = (Self.schemas["ErrorCode"] as! [String: Any])["enum"] as! [String]
        #expect(Set(documented) == Set(ErrorCode.allCases.map(\.rawValue)))
        #expect(documented.count == ErrorCode.allCases.count)
    }

    @Test func realResponsesMatchTheDocumentedStatusesAndSchemas() async throws {
        var ids = Ids(seed: 9)
        let tx = ids.hash(), input = ids.ref()
        let requests: [(path: String, uri: String, method: HTTPRequest.Method, body: ByteBuffer?)] = [
            ("/v1/notarise", "/v1/notarise", .post, json(NotarisationRequestJSON(signed(tx, inputs: [input], window: TimeWindow(from: nil, until: Instant(microsecondsSinceEpoch: 1)))))),
            ("/v1/notarise", "/v1/notarise", .post, json(NotarisationRequestJSON(signed(ids.hash(), inputs: [input])))),
            ("/v1/notarise", "/v1/notarise", .post, json(NotarisationRequestJSON(signed(ids.hash(), inputs: [input])))),
            ("/v1/notarise", "/v1/notarise", .post, ByteBuffer(string: "[]")),
            ("/v1/notarise/batch", "/v1/notarise/batch", .post, json(BatchRequestJSON(requests: [NotarisationRequestJSON(signed(ids.hash(), inputs: [ids.ref()]))]))),
            ("/v1/transactions/{txId}", "/v1/transactions/\(tx.hex)", .get, nil),
            ("/v1/transactions/{txId}", "/v1/transactions/\(ids.hash().hex)", .get, nil),
            ("/v1/identity", "/v1/identity", .get, nil),
            ("/v1/digest", "/v1/digest", .get, nil),
            ("/health/live", "/health/live", .get, nil),
            ("/health/ready", "/health/ready", .get, nil),
        ]
        try await withNotary { client, _ in
            for r in requests {
                try await client.execute(uri: r.uri, method: r.method, headers: jsonHeaders, body: r.body) { (response: TestResponse) async throws in
                    let operation = Self.paths[r.path]![r.method.rawValue.lowercased()] as! [String: Any]
                    let responses = operation["responses"] as! [String: Any]
                    let documented = responses["\(response.status.code)"] as? [String: Any]
                    #expect(documented != nil, "\(r.method) \(r.uri) answered \(response.status.code), which is not documented")
                    guard let documented else { return }
                    let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body))
                    let schema = Self.responseSchema(documented)
                    #expect(Self.violations(of: body, against: schema, at: "body") == [], "\(r.method) \(r.uri)")
                }
            }
        }
    }

    static func responseSchema(_ response: [String: Any]) -> [String: Any] {
        var response = response
        if let ref = response["$ref"] as? String {
            let name = ref.split(separator: "/").last!
            response = ((document["components"] as! [String: Any])["responses"] as! [String: Any])[String(name)] as! [String: Any]
        }
        let content = response["content"] as! [String: Any]
        return (content["application/json"] as! [String: Any])["schema"] as! [String: Any]
    }

    /// A small JSON Schema check: $ref, object (required, no undocumented keys), array, string enum, integer.
    static func violations(of value: Any, against schema: [String: Any], at path: String) -> [String] {
        if let ref = schema["$ref"] as? String {
            return violations(of: value, against: schemas[String(ref.split(separator: "/").last!)] as! [String: Any], at: path)
        }
        switch schema["type"] as? String {
        case "object":
            guard let object = value as? [String: Any] else { return ["\(path) is not an object"] }
            let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
            var out = ((schema["required"] as? [String]) ?? []).filter { object[$0] == nil }.map { "\(path).\($0) is missing" }
            for (key, item) in object {
                guard let property = properties[key] else { out.append("\(path).\(key) is not documented"); continue }
                out += violations(of: item, against: property, at: "\(path).\(key)")
            }
            return out
        case "array":
            guard let array = value as? [Any] else { return ["\(path) is not an array"] }
            return array.enumerated().flatMap { violations(of: $1, against: schema["items"] as! [String: Any], at: "\(path)[\($0)]") }
        case "string":
            guard let string = value as? String else { return ["\(path) is not a string"] }
            if let options = schema["enum"] as? [String], !options.contains(string) { return ["\(path) = \(string) is not in the enum"] }
            return []
        case "integer":
            return value is NSNumber ? [] : ["\(path) is not an integer"]
        default:
            return []
        }
    }
}
