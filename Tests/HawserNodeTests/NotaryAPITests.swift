import Foundation
import HawserCore
import HawserNode
import HawserWire
import Hummingbird
import HummingbirdTesting
import HawserTestSupport
import Testing

@Suite(.timeLimit(.minutes(10))) struct NotaryAPITests {
    @Test func notarisesOverJSONAndProtobufWithVerifiableAnswers() async throws {
        var ids = Ids(seed: 1)
        let (tx, other, input) = (ids.hash(), ids.hash(), ids.ref())
        try await withNotary { client, _ in
            try await client.execute(uri: "/v1/notarise", method: .post, headers: jsonHeaders,
                                     body: json(NotarisationRequestJSON(signed(tx, inputs: [input])))) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let answer = try decode(NotarisationAnswerJSON.self, response.body).decoded()
                #expect(answer.outcome == .committed && answer.isValid(notary: Verifier(notaryKey.publicKey)))
            }
            let body = try signed(other, inputs: [input]).proto.serializedBytes() as [UInt8]
            try await client.execute(uri: "/v1/notarise", method: .post, headers: protobufHeaders,
                                     body: ByteBuffer(bytes: body)) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/x-protobuf")
                let answer = try NotarisationAnswer(proto: Hawser_V1_NotarisationAnswer(serializedBytes: Array(buffer: response.body)))
                #expect(answer.outcome == .conflict([Conflict(ref: input, kind: .input, consumingTxIdHash: .sha256(tx.bytes))]))
                #expect(answer.isValid(notary: Verifier(notaryKey.publicKey)))
            }
            // Path segments are percent-decoded, as the node's are (`%61` is `a`).
            let encoded = tx.hex.map { "%" + String($0.asciiValue!, radix: 16) }.joined()
            for path in [tx.hex, encoded] {
                try await client.execute(uri: "/v1/transactions/\(path)", method: .get) { (response: TestResponse) async throws in
                    #expect(response.status == .ok)
                    #expect(try decode(NotarisationAnswerJSON.self, response.body).decoded().outcome == .committed)
                }
            }
        }
    }

    @Test func batchesAnswerEachItemInOrder() async throws {
        var ids = Ids(seed: 2)
        let a = ids.ref()
        var bad = NotarisationRequestJSON(signed(ids.hash(), inputs: [ids.ref()]))
        bad.inputs = ["not-a-ref"]
        let batch = BatchRequestJSON(requests: [NotarisationRequestJSON(signed(ids.hash(), inputs: [a])), bad,
                                                NotarisationRequestJSON(signed(ids.hash(), inputs: [a]))])
        try await withNotary { client, _ in
            try await client.execute(uri: "/v1/notarise/batch", method: .post, headers: jsonHeaders, body: json(batch)) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let results = try decode(BatchResponseJSON.self, response.body).results
                #expect(results.count == 3)
                #expect(results[0].answer?.outcome.kind == "committed")
                #expect(results[1].error?.code == "invalid_state_ref")
                #expect(results[2].answer?.outcome.kind == "conflict")
            }
        }
    }

    /// A protobuf batch is read request by request from its bytes: a request naming more state refs
    /// than allowed gets `too_many_state_refs` undecoded (six empty refs were decoded, and refused
    /// for their empty ids), and the others are decided as ever.
    @Test func aProtobufBatchCountsEachRequestsStateRefsBeforeDecodingIt() async throws {
        var ids = Ids(seed: 3)
        let a = ids.ref()
        func field1(_ bytes: [UInt8]) -> [UInt8] {  // a batch's `requests` field holding `bytes`
            var length: [UInt8] = [], n = bytes.count
            repeat { length.append(UInt8(n & 0x7f) | (n >= 0x80 ? 0x80 : 0)); n >>= 7 } while n > 0
            return [0x0a] + length + bytes
        }
        let sixEmptyRefs = [UInt8]([0x0a, 0x00]) + Array(repeating: [0x12, 0x00], count: 6).flatMap { $0 }
        let body = field1(try signed(ids.hash(), inputs: [a]).proto.serializedBytes()) + field1(sixEmptyRefs)
            + field1(try signed(ids.hash(), inputs: [a]).proto.serializedBytes())
        try await withNotary({ $0.limits.maxStateRefs = 5 }) { client, _ in
            try await client.execute(uri: "/v1/notarise/batch", method: .post, headers: protobufHeaders,
                                     body: ByteBuffer(bytes: body)) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let results = try Hawser_V1_NotarisationBatchResponse(serializedBytes: Array(buffer: response.body)).results
                try #require(results.count == 3)
                #expect(results[0].answer.outcome.kind == .committed(.init()))
                #expect(results[1].error.code == "too_many_state_refs")
                #expect(results[2].answer.outcome.conflict.conflicts.count == 1)
            }
        }
    }

    /// Every bad input of rule 7 gets its code and status, and nothing reaches the log or the store.
    @Test func everyBadInputGetsItsCodeAndChangesNothing() async throws {
        var ids = Ids(seed: 3)
        let good = NotarisationRequestJSON(signed(ids.hash(), inputs: [ids.ref()]))
        let ref = ids.ref()
        func window(from: String?, until: String?) -> TimeWindowJSON {
            var w = TimeWindowJSON(TimeWindow(from: nil, until: Instant(microsecondsSinceEpoch: 0))!)
            (w.from, w.until) = (from, until)
            return w
        }
        func variant(_ change: (inout NotarisationRequestJSON) -> Void) -> ByteBuffer {
            var r = good
            change(&r)
            return json(r)
        }
        let stranger = SigningKey(seed: [UInt8](repeating: 9, count: 32))!
        let strangerRequest = NotarisationRequest.signed(txId: ids.hash(), inputs: [ids.ref()], requesterName: "O=Mallory",
                                                         key: stranger, notary: notaryKey.publicKey)
        let tooMany = signed(ids.hash(), inputs: (0..<6).map { _ in ids.ref() })
        // Protobuf bodies are counted before they are decoded (`WireScan`): six empty refs (two
        // bytes each) were decoded, and refused for their first ref's empty id, not their number.
        let sixEmptyRefs = ByteBuffer(bytes: [0x0a, 0x00] + Array(repeating: [0x12, 0x00], count: 6).flatMap { $0 })
        let threeEmptyRequests = ByteBuffer(bytes: Array(repeating: [0x0a, 0x00], count: 3).flatMap { $0 })
        // A bound outside the years 0000 to 9999 (UTC) could not be written back in an answer.
        var outOfRange = signed(ids.hash(), inputs: [ids.ref()]).proto
        outOfRange.timeWindow.untilMicros = .min
        let cases: [(name: String, uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?, code: String, status: Int)] = [
            ("not JSON", "/v1/notarise", .post, jsonHeaders, ByteBuffer(string: "{nope"), "malformed_request", 400),
            // A member named twice: Foundation's reader took the first, and this request was committed.
            ("member twice", "/v1/notarise", .post, jsonHeaders, ByteBuffer(string: String(String(buffer: json(good)).dropLast()) + #","signature":"AAAA"}"#),
             "malformed_request", 400),
            ("null body", "/v1/notarise", .post, jsonHeaders, ByteBuffer(string: "null"), "malformed_request", 400),
            ("missing field", "/v1/notarise", .post, jsonHeaders, ByteBuffer(string: "{\"txId\":\"00\"}"), "malformed_request", 400),
            ("not protobuf", "/v1/notarise", .post, protobufHeaders, ByteBuffer(bytes: [0xff, 0xff, 0xff]), "malformed_request", 400),
            ("bad tx id", "/v1/notarise", .post, jsonHeaders, variant { $0.txId = "xyz" }, "invalid_transaction_id", 400),
            ("bad ref", "/v1/notarise", .post, jsonHeaders, variant { $0.inputs = ["\(ref.txId.hex):-1"] }, "invalid_state_ref", 400),
            ("bad window", "/v1/notarise", .post, jsonHeaders, variant { $0.timeWindow = window(from: "yesterday", until: nil) }, "invalid_time_window", 400),
            ("empty window", "/v1/notarise", .post, jsonHeaders, variant { $0.timeWindow = window(from: nil, until: nil) }, "invalid_time_window", 400),
            ("window before year 0", "/v1/notarise", .post, jsonHeaders,
             variant { $0.timeWindow = window(from: nil, until: "0000-01-01T00:30:00+01:00") }, "invalid_time_window", 400),
            ("window after year 9999", "/v1/notarise", .post, jsonHeaders,
             variant { $0.timeWindow = window(from: "9999-12-31T23:59:59-23:59", until: nil) }, "invalid_time_window", 400),
            ("protobuf window out of range", "/v1/notarise", .post, protobufHeaders,
             ByteBuffer(bytes: try outOfRange.serializedBytes() as [UInt8]), "invalid_time_window", 400),
            ("bad key", "/v1/notarise", .post, jsonHeaders, variant { $0.requester.publicKey = "AAAA" }, "invalid_public_key", 400),
            ("duplicate", "/v1/notarise", .post, jsonHeaders, variant { $0.inputs = [ref.description, ref.description] }, "duplicate_state_ref", 400),
            ("both", "/v1/notarise", .post, jsonHeaders, variant { $0.inputs = [ref.description]; $0.references = [ref.description] }, "ref_both_input_and_reference", 400),
            ("too many", "/v1/notarise", .post, jsonHeaders, json(NotarisationRequestJSON(tooMany)), "too_many_state_refs", 400),
            ("too many empty refs, protobuf", "/v1/notarise", .post, protobufHeaders, sixEmptyRefs, "too_many_state_refs", 400),
            ("protobuf batch too big", "/v1/notarise/batch", .post, protobufHeaders, threeEmptyRequests, "batch_too_large", 413),
            ("protobuf batch not protobuf", "/v1/notarise/batch", .post, protobufHeaders, ByteBuffer(bytes: [0x0a, 0x09, 0x00]), "malformed_request", 400),
            ("nothing", "/v1/notarise", .post, jsonHeaders, variant { $0.inputs = [] }, "nothing_to_notarise", 400),
            ("unknown party", "/v1/notarise", .post, jsonHeaders, json(NotarisationRequestJSON(strangerRequest)), "unknown_party", 403),
            ("bad signature", "/v1/notarise", .post, jsonHeaders, variant { $0.inputs = [ref.description] }, "invalid_signature", 403),
            ("signature not base64", "/v1/notarise", .post, jsonHeaders, variant { $0.signature = "!!" }, "invalid_signature", 403),
            ("too big", "/v1/notarise", .post, jsonHeaders, ByteBuffer(repeating: 0x20, count: 5000), "body_too_large", 413),
            ("batch too big", "/v1/notarise/batch", .post, jsonHeaders, json(BatchRequestJSON(requests: Array(repeating: good, count: 3))), "batch_too_large", 413),
            ("media type", "/v1/notarise", .post, [.contentType: "text/plain"], ByteBuffer(string: "hi"), "unsupported_media_type", 415),
            ("no such path", "/v1/nothing", .get, [:], nil, "not_found", 404),
            ("wrong method", "/v1/notarise", .get, [:], nil, "method_not_allowed", 405),
            ("lookup bad id", "/v1/transactions/zz", .get, [:], nil, "invalid_transaction_id", 400),
            ("lookup unknown", "/v1/transactions/\(ids.hash().hex)", .get, [:], nil, "transaction_not_found", 404),
        ]
        try await withNotary({ config in
            config.limits.maxStateRefs = 5
            config.limits.maxBodyBytes = 4096
            config.limits.maxBatchRequests = 2
        }) { client, parts in
            let digest = try await parts.store.digest()
            for c in cases {
                try await client.execute(uri: c.uri, method: c.method, headers: c.headers, body: c.body) { (response: TestResponse) async throws in
                    #expect(response.status.code == c.status, "\(c.name)")
                    let error = response.headers[.contentType] == "application/x-protobuf"
                        ? (try? Hawser_V1_Error(serializedBytes: Array(buffer: response.body))).map { (code: $0.code, message: $0.message) }
                        : (try? decode(ErrorBodyJSON.self, response.body).error).map { (code: $0.code, message: $0.message) }
                    #expect(error?.code == c.code, "\(c.name)")
                    #expect(error?.message.isEmpty == false, "\(c.name)")
                }
            }
            #expect(try await parts.log.lastPosition() == 0, "no bad request reached the log")
            #expect(try await parts.store.digest() == digest)
        }
    }

    @Test func protobufClientsGetProtobufErrors() async throws {
        try await withNotary { client, _ in
            try await client.execute(uri: "/v1/notarise", method: .post, headers: protobufHeaders,
                                     body: ByteBuffer(bytes: [0x0a, 0x01, 0x00])) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                #expect(try Hawser_V1_Error(serializedBytes: Array(buffer: response.body)).code == "invalid_transaction_id")
            }
        }
    }

    @Test func servesIdentityHealthAndMetrics() async throws {
        var ids = Ids(seed: 4)
        let first = NotarisationRequestJSON(signed(ids.hash(), inputs: [ids.ref()]))
        try await withNotary { client, _ in
            try await client.execute(uri: "/v1/identity", method: .get) { (response: TestResponse) async throws in
                let identity = try decode(NotaryIdentityJSON.self, response.body)
                #expect(identity == NotaryIdentityJSON(name: "O=Hawser Notary, L=London, C=GB", publicKey: notaryKey.publicKey))
            }
            try await client.execute(uri: "/health/live", method: .get) { #expect($0.status == .ok) }
            _ = try await client.execute(uri: "/v1/notarise", method: .post, headers: jsonHeaders,
                                         body: json(first))
            try await client.execute(uri: "/health/ready", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { (response: TestResponse) async throws in
                let text = String(buffer: response.body)
                #expect(text.contains("hawser_notary_outcomes_total{outcome=\"committed\"} 1"))
                #expect(text.contains("hawser_notary_request_duration_seconds"))
            }
        }
    }

    /// After a restart the metric says the position the store applied, not 0 until the next
    /// entry (found from outside: an idle notary's metric stayed 0, below the confirmed position).
    @Test func theAppliedPositionMetricIsTheStoresAfterARestart() async throws {
        var ids = Ids(seed: 5)
        let bodies = (0..<3).map { _ in json(NotarisationRequestJSON(signed(ids.hash(), inputs: [ids.ref()]))) }
        let dir = try TemporaryDirectory()
        try writeNotaryFiles(in: dir.path) { _ in }
        let configuration = try NotaryConfiguration.load(dir.path + "/hawser.json")
        @Sendable func metric(_ client: any TestClientProtocol) async throws -> String? {
            try await client.execute(uri: "/metrics", method: .get) { response in
                String(buffer: response.body).split(separator: "\n").first { $0.hasPrefix("hawser_notary_applied_position ") }.map(String.init)
            }
        }
        for run in 0..<2 {
            let (app, parts) = try await NotaryNode.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
            try await app.test(.router) { client in
                if run == 0 {
                    for body in bodies {
                        try await client.execute(uri: "/v1/notarise", method: .post, headers: jsonHeaders, body: body) { #expect($0.status == .ok) }
                    }
                } else {
                    try await parts.replica.waitUntilApplied(3)  // read from the store: no entry is applied
                }
                #expect(try await metric(client) == "hawser_notary_applied_position 3.0", "run \(run)")
            }
        }
    }
}
