import Embedded
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
    let store: any NotaryStore
    let storePath: String
    let limits: NotaryConfiguration.Limits
    let registry: PrometheusCollectorRegistry

    /// Every route as (method, path): registered from here and checked against the OpenAPI document.
    static let routes: [(method: HTTPRequest.Method, path: String)] = [
        (.post, "/v1/notarise"), (.post, "/v1/notarise/batch"), (.get, "/v1/transactions/{txId}"),
        (.get, "/v1/identity"), (.get, "/v1/digest"), (.get, "/v1/snapshot"), (.get, "/health/live"), (.get, "/health/ready"), (.get, "/metrics"),
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
        router.get("/v1/digest") { _, _ in try await digest() }
        router.get("/v1/snapshot") { _, _ in try await snapshot() }
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

    /// The store's digest with the position it reflects: equal on replicas that applied the same
    /// log prefix. Position and digest are read apart, so the digest is retried until the
    /// position did not move while it was computed.
    private func digest() async throws -> DigestJSON {
        for _ in 0..<20 {
            let before = try await store.appliedPosition()
            let digest = try await store.digest()
            if try await store.appliedPosition() == before { return DigestJSON(appliedPosition: before, digest: digest.hex) }
        }
        throw APIError(.notReady, "the replica applies the log too fast to take a stable digest; retry when the load is lower")
    }

    /// A consistent copy of the replica's store (SQLite online backup), streamed as one file.
    /// `Hawser-Applied-Position` says where in the log a replica restored from it continues.
    private func snapshot() async throws -> Response {
        let path = storePath + ".snapshot-\(UUID().uuidString)"
        let position: UInt64
        do {
            // Seconds of blocking I/O for a large store: on a thread of its own, not in the
            // shared pool, where two snapshots would stall every request on a two-core machine.
            let thread = DedicatedThread(name: "hawser-snapshot")
            defer { thread.stop() }
            position = try await withTaskExecutorPreference(thread) { try SQLiteSnapshot.write(store: storePath, to: path) }
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw APIError(.internalError, "the snapshot could not be made: \(error)")
        }
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw APIError(.internalError, "the snapshot could not be read back")
        }
        // Unlinked at once: the open handle keeps the data readable until the body is sent.
        try? FileManager.default.removeItem(atPath: path)
        let size = Int(try file.seekToEnd())
        try file.seek(toOffset: 0)
        let body = ResponseBody(contentLength: size) { writer in
            defer { try? file.close() }
            while let chunk = try file.read(upToCount: 1 << 20), !chunk.isEmpty {
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/vnd.sqlite3",
                                               .hawserAppliedPosition: String(position)], body: body)
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

struct DigestJSON: ResponseEncodable {
    var appliedPosition: UInt64
    var digest: String
}

struct HealthStatus: ResponseEncodable {
    var status: String
}

extension NotaryIdentityJSON: ResponseEncodable {}

extension HTTPFields.Element.Name {
    /// The log position a snapshot's store has applied (on `GET /v1/snapshot`).
    static let hawserAppliedPosition = Self("Hawser-Applied-Position")!
}
