import Embedded
import Foundation
import HawserCore
import HawserWire
import Hummingbird
import Notary
import Prometheus

/// The notary's HTTP API (docs/openapi.json describes it; a test keeps the two in step). It
/// serves with the notary parts `serving` holds; a hot-warm standby (`gated`) gives every `/v1/`
/// route the standby answer.
struct NotaryAPI {
    let serving: ServingState<NotaryTerm>
    let gated: Bool
    /// The store, shared by every term.
    let store: any NotaryStore
    /// The SQLite store's file, for snapshots (nil on PostgreSQL).
    let storePath: String?
    let limits: NotaryConfiguration.Limits
    let registry: PrometheusCollectorRegistry
    /// Who may copy the store (`GET /v1/snapshot`).
    let snapshots: SnapshotCredential

    /// The notary parts serving now, or the standby answer.
    private func term() throws(APIError) -> NotaryTerm { try serving.work(or: APIError.self) }

    /// Every route with the query parameters it takes (none): checked against the OpenAPI document.
    static let routes: [APIRoute] = [
        APIRoute(.post, "/v1/notarise"), APIRoute(.post, "/v1/notarise/batch"), APIRoute(.get, "/v1/transactions/{txId}"),
        APIRoute(.get, "/v1/identity"), APIRoute(.get, "/v1/digest"), APIRoute(.get, "/v1/snapshot"),
        APIRoute(.get, "/v1/replica"), APIRoute(.get, "/v1/replica/heads/{position}"),
        APIRoute(.get, "/health/live"), APIRoute(.get, "/health/ready"), APIRoute(.get, "/metrics"),
    ]

    func router() -> Router<NotaryRequestContext> {
        let router = Router(context: NotaryRequestContext.self)
        router.add(middleware: EdgeMiddleware<NotaryRequestContext, APIError>(
            routes: Self.routes, server: "notary", bodyLimit: ("limits.maxBodyBytes", limits.maxBodyBytes),
            inFlight: ("limits.maxBodyBytesInFlight", BodyBudget(limit: limits.maxBodyBytesInFlight))))
        if gated { router.add(middleware: StandbyGate<NotaryRequestContext, NotaryTerm, APIError>(serving: serving, routes: Self.routes)) }
        router.post("/v1/notarise") { request, _ in try await notariseOne(request) }
        router.post("/v1/notarise/batch") { request, _ in try await notariseBatch(request) }
        router.get("/v1/transactions/{txId}") { request, context in
            // Path segments are percent-decoded, as the node's; a bad escape is no transaction id.
            let text = context.parameters.get("txId") ?? ""
            guard let txId = text.removingPercentEncoding.flatMap({ SecureHash(hex: $0) }) else {
                throw APIError(.invalidTransactionId, "`\(text.prefix(100))` is not a transaction id (64 hexadecimal digits)")
            }
            let answer = try await term().notary.answer(for: txId)
            return WireFormat.forResponse(to: request).response(json: NotarisationAnswerJSON(answer), proto: answer.proto)
        }
        router.get("/v1/identity") { _, _ in
            let identity = try term().notary.identity
            return NotaryIdentityJSON(name: identity.name, publicKey: identity.publicKey)
        }
        router.get("/v1/digest") { _, _ in
            _ = try term()  // a standby's view of the shared store may be behind the active's
            do { return try await digest() } catch { throw Notary.apiError(error, "compute its digest") }
        }
        router.get("/v1/snapshot") { request, _ in
            _ = try term()
            guard let storePath else {
                // A snapshot starts a replica of a JetStream cluster (`hawser notary restore`);
                // every process of a PostgreSQL notary shares one store, so none needs a copy.
                throw APIError(.noSnapshot, "this notary keeps its store in PostgreSQL, which every process of it shares: "
                               + "there is no replica to start from a snapshot; back the database up with PostgreSQL's own tools (pg_dump)")
            }
            let now = Int64(Date().timeIntervalSince1970)
            if let refusal = snapshots.refusal(request.headers[.authorization], at: now) { throw APIError(.unauthorized, refusal) }
            return try await snapshot(of: storePath)
        }
        router.get("/v1/replica") { _, _ in ReplicaStatusJSON(try term().replica.quorum) }
        router.get("/v1/replica/heads/{position}") { _, context in
            let text = context.parameters.get("position") ?? ""
            let replica = try term().replica
            guard let position = text.removingPercentEncoding.flatMap({ UInt64($0) }) else {
                throw APIError(.malformedRequest, "`\(text.prefix(30))` is not a log position (a whole number)")
            }
            guard let head = replica.quorum.head(at: position) else {
                throw APIError(.positionNotRemembered, "this replica (applied \(replica.appliedPosition)) does not remember its chain at position \(position): it has not applied it yet, or it is too old")
            }
            return ChainHeadJSON(head)
        }
        router.get("/health/live") { _, _ in HealthStatus(status: "live") }
        router.get("/health/ready") { request, context in
            let replica: Replica
            switch serving.current {
            case .active(let term): replica = term.replica
            case .takingOver(let step): throw APIError(.notReady, "taking over as the active notary: \(step)")
            case .standby:
                var response = try HealthStatus(status: "standby", problem: serving.healthProblem).response(from: request, context: context)
                response.status = .serviceUnavailable
                return response
            }
            if let problem = serving.healthProblem { throw APIError(.notReady, "unhealthy, stepping down: \(problem)") }
            if let problem = replica.storeProblem { throw APIError(.notReady, Replica.storeProblemMessage(problem)) }
            if let problem = replica.quorum.appendProblem {
                throw APIError(.notReady, Quorum.appendProblemMessage(problem))
            }
            // The store answers a read: a notary whose PostgreSQL server was gone said ready
            // while no request could be decided (found from outside).
            if let problem = await readProblem({ [store] in _ = try await store.head() }) {
                throw APIError(.notReady, "the notary database does not answer a read: \(problem)")
            }
            switch replica.quorum.health {
            case .ready: return try HealthStatus(status: "ready").response(from: request, context: context)
            case .catchingUp where !replica.quorum.started:
                throw APIError(.notReady, "the replica is starting: it reads its store and waits for the log to answer (applied \(replica.appliedPosition))")
            case .catchingUp:
                throw APIError(.notReady, "the replica is still catching up with the log (applied \(replica.appliedPosition))")
            case .noQuorum(let live):
                throw APIError(.noQuorum, "only \(live.joined(separator: ", ")) of the replicas \(replica.quorum.membership.members.joined(separator: ", ")) are heard from and agree with this replica's chain: nothing can be confirmed")
            case let health:
                throw health.refusal ?? APIError(.internalError, "unknown replica health")
            }
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
            let before = try await store.head().position
            let digest = try await store.digest()
            if try await store.head().position == before { return DigestJSON(appliedPosition: before, digest: digest.hex) }
        }
        throw APIError(.notReady, "the replica applies the log too fast to take a stable digest; retry when the load is lower")
    }

    /// A consistent copy of the replica's store (SQLite online backup), streamed as one file.
    /// `Hawser-Applied-Position` says where in the log a replica restored from it continues.
    private func snapshot(of storePath: String) async throws -> Response {
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
        if format == .protobuf { try checkStateRefs(body.withUnsafeReadableBytes(WireScan.stateRefs(request:))) }
        let parsed: NotarisationRequest
        switch try format.decode(body, json: NotarisationRequestJSON.self, proto: Hawser_V1_NotarisationRequest.self) {
        case .json(let json): parsed = try json.decoded()
        case .proto(let proto): parsed = try NotarisationRequest(proto: proto)
        }
        let answer = try await term().notary.notarise(parsed)
        return format.response(json: NotarisationAnswerJSON(answer), proto: answer.proto)
    }

    private func notariseBatch(_ request: Request) async throws -> Response {
        let format = try WireFormat.ofBody(request)
        let body = try await request.body.collect(upTo: limits.maxBodyBytes)
        // Each item decodes on its own: one bad item gets its own error and the rest proceed.
        let decoded: [Result<NotarisationRequest, APIError>]
        switch format {
        case .json:
            let json = try format.decodeJSON(body, BatchRequestJSON.self)
            try checkBatchSize(json.requests.count)
            decoded = json.requests.map { item in Result { () throws(APIError) in try item.decoded() } }
        case .protobuf:
            decoded = try decodeProtobufBatch(body)
        }
        let valid = decoded.compactMap { try? $0.get() }
        let parts = try term()
        var answers = await parts.notary.notarise(batch: valid).makeIterator()
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

extension NotaryAPI {
    /// A protobuf batch, read request by request from its bytes (`WireScan`): a batch of more
    /// requests than allowed is refused, and a request that names more state refs than allowed
    /// gets its error, before anything is decoded.
    private func decodeProtobufBatch(_ body: ByteBuffer) throws -> [Result<NotarisationRequest, APIError>] {
        try body.withUnsafeReadableBytes { bytes in
            guard let requests = WireScan.requests(batch: bytes) else {
                throw WireFormat.protobuf.malformed(BatchRequestJSON.self, "undecodable")
            }
            try checkBatchSize(requests.count)
            return try requests.map { range in
                let item = UnsafeRawBufferPointer(rebasing: bytes[range])
                guard let refs = WireScan.stateRefs(request: item) else {
                    throw WireFormat.protobuf.malformed(BatchRequestJSON.self, "undecodable")
                }
                guard refs <= limits.maxStateRefs else { return .failure(RequestValidator.tooManyStateRefs(refs, max: limits.maxStateRefs)) }
                let proto: Hawser_V1_NotarisationRequest
                do { proto = try Hawser_V1_NotarisationRequest(serializedBytes: Array(item)) } catch {
                    throw WireFormat.protobuf.malformed(BatchRequestJSON.self, "undecodable")
                }
                return Result { () throws(APIError) in try NotarisationRequest(proto: proto) }
            }
        }
    }

    private func checkBatchSize(_ count: Int) throws {
        guard count <= limits.maxBatchRequests else {
            throw APIError(.batchTooLarge, "the batch holds \(count) requests; this notary accepts at most \(limits.maxBatchRequests)")
        }
    }

    /// Refuses a protobuf request that names more state refs than allowed before it is decoded;
    /// bytes that are not protobuf are refused as the decoder would.
    private func checkStateRefs(_ refs: Int?) throws {
        guard let refs else { throw WireFormat.protobuf.malformed(NotarisationRequestJSON.self, "undecodable") }
        guard refs <= limits.maxStateRefs else { throw RequestValidator.tooManyStateRefs(refs, max: limits.maxStateRefs) }
    }
}

struct DigestJSON: ResponseEncodable {
    var appliedPosition: UInt64
    var digest: String
}

struct ChainHeadJSON: ResponseEncodable, Decodable {
    var position: UInt64
    var entryHash: String
    var stateHash: String

    init(_ head: ChainHead) {
        position = head.position
        entryHash = head.entryHash.hex
        stateHash = head.stateHash.hex
    }
}

/// `GET /v1/replica`: where this replica stands in its cluster (docs/cluster.md).
struct ReplicaStatusJSON: ResponseEncodable {
    struct DisagreementJSON: Encodable {
        var peer: String
        var mine: ChainHeadJSON
        var theirs: ChainHeadJSON
    }
    struct BreakJSON: Encodable {
        var kind: String
        var position: UInt64
        var claimedPosition: UInt64
        var expectedPrevious: String
        var claimedPrevious: String?
        var sequencer: String
        var entryHash: String
        var message: String
    }
    var replica: String
    var members: [String]
    var status: String
    var applied: ChainHeadJSON
    var confirmed: UInt64
    var sequencer: String?
    var logBreak: BreakJSON?
    var disagreements: [DisagreementJSON]
    /// With `members_mismatch`: the replica heard with another list, and its list.
    var otherMembers: OtherMembersJSON?
    struct OtherMembersJSON: Encodable {
        var replica: String
        var members: [String]
    }

    init(_ quorum: Quorum) {
        replica = quorum.membership.me
        members = quorum.membership.members
        let health = quorum.health
        status = health.status
        // Before the replica has read its store, its head is not yet its own.
        if !quorum.started { status = "starting" }
        applied = ChainHeadJSON(quorum.head)
        confirmed = quorum.confirmed
        sequencer = quorum.sequencer()
        if case .otherMembers(let other, _) = health {
            otherMembers = OtherMembersJSON(replica: other.replica, members: other.members)
        }
        if case .diverged(let found?, _) = health {
            logBreak = BreakJSON(kind: found.kind.rawValue, position: found.position, claimedPosition: found.claimedPosition,
                                 expectedPrevious: found.expectedPrevious.hex, claimedPrevious: found.claimedPrevious?.hex,
                                 sequencer: found.sequencer, entryHash: found.entryHash.hex, message: found.description)
        }
        disagreements = quorum.disagreements.map {
            DisagreementJSON(peer: $0.peer, mine: ChainHeadJSON($0.mine), theirs: ChainHeadJSON($0.theirs))
        }
    }
}

struct HealthStatus: ResponseEncodable {
    var status: String
    /// With `standby`: why this process does not stand for election now (its database does not
    /// answer), absent while it stands. Both answers are 503; an operator reading only
    /// readiness could not tell a healthy standby from one that could never take over.
    var problem: String? = nil
}

extension NotaryIdentityJSON: ResponseEncodable {}

extension HTTPFields.Element.Name {
    /// The log position a snapshot's store has applied (on `GET /v1/snapshot`).
    static let hawserAppliedPosition = Self("Hawser-Applied-Position")!
    /// The id of the last event a reconnecting event-stream client saw (the SSE standard's header).
    static let lastEventID = Self("Last-Event-ID")!
}
