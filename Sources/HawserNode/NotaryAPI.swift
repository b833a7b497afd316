import Foundation
import HawserCore
import HawserWire
import Hummingbird
import Notary
import Prometheus

/// The notary's HTTP API (docs/openapi.json describes it; a test keeps the two in step).
struct NotaryAPI {
    let notary: Notary
    let replica: Replica
    let limits: NotaryConfiguration.Limits
    let registry: PrometheusCollectorRegistry

    /// Every route as (method, path): registered from here and checked against the OpenAPI document.
    static let routes: [(method: HTTPRequest.Method, path: String)] = [
        (.post, "/v1/notarise"), (.post, "/v1/notarise/batch"), (.get, "/v1/transactions/{txId}"),
        (.get, "/v1/identity"), (.get, "/health/live"), (.get, "/health/ready"), (.get, "/metrics"),
    ]

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: APIErrorMiddleware(knownPaths: Set(Self.routes.map(\.path))))
        router.post("/v1/notarise") { request, _ in try await notariseOne(request) }
        router.post("/v1/notarise/batch") { request, _ in try await notariseBatch(request) }
        router.get("/v1/transactions/{txId}") { request, context in
            let text = context.parameters.get("txId") ?? ""
            guard let txId = SecureHash(hex: text) else {
                throw APIError(.invalidTransactionId, "`\(text.prefix(100))` is not a transaction id (64 hexadecimal digits)")
            }
            let answer = try await notary.answer(for: txId)
            return WireFormat.forResponse(to: request).response(json: NotarisationAnswerJSON(answer), proto: answer.proto)
        }
        router.get("/v1/identity") { _, _ in
            NotaryIdentityJSON(name: notary.identity.name, publicKey: notary.identity.publicKey)
        }
        router.get("/health/live") { _, _ in HealthStatus(status: "live") }
        router.get("/health/ready") { _, _ in
            guard replica.isCaughtUp else {
                throw APIError(.notReady, "the replica is still catching up with the log (applied \(replica.appliedPosition))")
            }
            return HealthStatus(status: "ready")
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return router
    }

    private func notariseOne(_ request: Request) async throws -> Response {
        let format = try WireFormat.ofBody(request)
        let body = try await request.body.collect(upTo: limits.maxBodyBytes)
        let parsed: NotarisationRequest
        switch try format.decode(body, json: NotarisationRequestJSON.self, proto: Hawser_V1_NotarisationRequest.self) {
        case .json(let json): parsed = try json.decoded()
        case .proto(let proto): parsed = try NotarisationRequest(proto: proto)
        }
        let answer = try await notary.notarise(parsed)
        return format.response(json: NotarisationAnswerJSON(answer), proto: answer.proto)
    }

    private func notariseBatch(_ request: Request) async throws -> Response {
        let format = try WireFormat.ofBody(request)
        let body = try await request.body.collect(upTo: limits.maxBodyBytes)
        // Each item decodes on its own: one bad item gets its own error and the rest proceed.
        var decoded: [Result<NotarisationRequest, APIError>]
        switch try format.decode(body, json: BatchRequestJSON.self, proto: Hawser_V1_NotarisationBatchRequest.self) {
        case .json(let json): decoded = json.requests.map { item in Result { () throws(APIError) in try item.decoded() } }
        case .proto(let proto): decoded = proto.requests.map { item in Result { () throws(APIError) in try NotarisationRequest(proto: item) } }
        }
        guard decoded.count <= limits.maxBatchRequests else {
            throw APIError(.batchTooLarge, "the batch holds \(decoded.count) requests; this notary accepts at most \(limits.maxBatchRequests)")
        }
        let valid = decoded.compactMap { try? $0.get() }
        var answers = await notary.notarise(batch: valid).makeIterator()
        let results = decoded.map { item -> Result<NotarisationAnswer, APIError> in
            switch item {
            case .success: answers.next()!
            case .failure(let error): .failure(error)
            }
        }
        return format.response(json: BatchResponseJSON(results: results.map(BatchResultJSON.init)), proto: {
            var p = Hawser_V1_NotarisationBatchResponse()
            p.results = results.map { result in
                var r = Hawser_V1_NotarisationResult()
                switch result {
                case .success(let answer): r.answer = answer.proto
                case .failure(let error): r.error = error.proto
                }
                return r
            }
            return p
        }())
    }
}

struct HealthStatus: ResponseEncodable {
    var status: String
}

extension NotaryIdentityJSON: ResponseEncodable {}
