import Foundation
import GRPCCore
import GRPCProtobuf
import HawserCore
import HawserWire
import Notary
import SwiftProtobuf
import Synchronization

/// The notary's gRPC service (docs/notary-protocol.md, "gRPC"): the same requests and answers as
/// `POST /v1/notarise`, decided by the same notary. A refusal is an answer message holding the
/// HTTP API's `Error` (same code, same sentence); a gRPC status other than OK means the call
/// itself failed (transport, limits, shutdown) and says nothing about any request.
struct NotaryGRPCService: Hawser_V1_Notary.SimpleServiceProtocol {
    let serving: ServingState<NotaryTerm>
    /// Most requests of one stream decided at once (`grpc.maxInFlightPerStream`).
    let maxInFlightPerStream: Int
    /// The places of every stream together (`grpc.maxInFlight`): what unread results can hold.
    let inFlight: InFlightSlots
    /// Set when the server begins its graceful shutdown.
    let draining: GRPCDraining
    /// Most state refs in one request (`limits.maxStateRefs`): a request message naming more is
    /// not decoded (`ReadRequests`).
    let maxStateRefs: Int

    /// The generated registration, but with request deserializers that count a request's state
    /// refs in its bytes first: decoded, a ref costs about 48 bytes however short it is on the
    /// wire, and a 4 MiB message of two million empty refs took the notary 90 MB. A request over
    /// the limit is answered `too_many_state_refs` as any refused request is.
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: Hawser_V1_Notary.Method.Notarise.descriptor,
            deserializer: ReadRequests<Hawser_V1_NotarisationRequest>(maxStateRefs: maxStateRefs) { bytes in
                WireScan.stateRefs(request: bytes).map { (id: 0, stateRefs: $0) }
            },
            serializer: ProtobufSerializer<Hawser_V1_NotarisationResult>()
        ) { request, _ in
            let read = try await ServerRequest(stream: request).message
            return StreamingServerResponse(single: ServerResponse(message: await decide(read), metadata: [:]))
        }
        router.registerHandler(
            forMethod: Hawser_V1_Notary.Method.NotariseStream.descriptor,
            deserializer: ReadRequests<Hawser_V1_StreamedRequest>(maxStateRefs: maxStateRefs, scan: WireScan.streamed),
            serializer: ProtobufSerializer<Hawser_V1_StreamedResult>()
        ) { request, context in
            StreamingServerResponse(metadata: [:]) { writer in
                try await notariseStream(read: request.messages, response: writer, context: context)
                return [:]
            }
        }
        router.registerHandler(
            forMethod: Hawser_V1_Notary.Method.Identity.descriptor,
            deserializer: ProtobufDeserializer<Hawser_V1_IdentityRequest>(),
            serializer: ProtobufSerializer<Hawser_V1_Party>()
        ) { request, context in
            StreamingServerResponse(single: ServerResponse(message: try await identity(request: try await ServerRequest(stream: request).message,
                                                                                       context: context), metadata: [:]))
        }
    }

    func notarise(request: Hawser_V1_NotarisationRequest, context: ServerContext) async throws -> Hawser_V1_NotarisationResult {
        await decide(.decoded(request))
    }

    func notariseStream(request: RPCAsyncSequence<Hawser_V1_StreamedRequest, any Error>,
                        response: RPCWriter<Hawser_V1_StreamedResult>, context: ServerContext) async throws {
        try await notariseStream(read: RPCAsyncSequence(wrapping: request.map { .decoded($0) }), response: response, context: context)
    }

    /// The stream of requests as `ReadRequests` reads them.
    func notariseStream(read request: RPCAsyncSequence<ReadRequest<Hawser_V1_StreamedRequest>, any Error>,
                        response: RPCWriter<Hawser_V1_StreamedResult>, context: ServerContext) async throws {
        let places = StreamPlaces(own: maxInFlightPerStream, all: inFlight)
        defer { places.releaseRest() }
        // gRPC reports a call that ended early (the client cancelled it, its connection broke) on
        // the call's cancellation handle, not by cancelling this task: the stream's requests still
        // waiting for a decision would hold their places until the request timeout. The handle
        // fires too when the server begins a graceful shutdown; then the call finishes what it read.
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await serve(request, response, places: places)
                return true
            }
            group.addTask {
                try await context.cancellation.cancelled
                return false
            }
            while let served = try await group.next() {
                if served || !draining.isDraining { break }
            }
            group.cancelAll()  // cancelled: the decisions under way are answered `shutting_down` at once
        }
    }

    /// Reads the stream's requests, decides them in groups and writes each result as it comes.
    private func serve(_ request: RPCAsyncSequence<ReadRequest<Hawser_V1_StreamedRequest>, any Error>,
                       _ response: RPCWriter<Hawser_V1_StreamedResult>, places: StreamPlaces) async throws {
        let arrived = Mailbox<ReadRequest<Hawser_V1_StreamedRequest>>()
        let answered = Mailbox<Hawser_V1_StreamedResult>()
        try await withThrowingDiscardingTaskGroup { group in
            // Results ready together go out in one write: one hop to the connection's event loop.
            // A request holds its place until its result is written, not merely decided: a client
            // that sends and never reads would otherwise have every result it did not read held
            // here (HTTP/2 flow control stops the writes, not the reads). A call left unwritable
            // for the idle time-out is reset (`GRPCCallGuard`): its places then come back.
            group.addTask {
                while let results = await answered.takeAll() {
                    try await response.write(contentsOf: results)
                    places.release(results.count)
                }
            }
            try await withThrowingDiscardingTaskGroup { batches in
                batches.addTask {
                    defer { arrived.close() }
                    for try await item in request {
                        // At the limit the stream is not read on: HTTP/2 flow control then holds the client back.
                        try await places.acquire()
                        arrived.post(item)
                    }
                }
                // The requests that arrived while the last group was being taken are decided
                // together (one validation pass, one append); each is answered on its own.
                while let items = await arrived.takeAll() {
                    batches.addTask {
                        await decide(items) { answered.post($0) }
                    }
                }
            }
            answered.close()
        }
    }

    func identity(request: Hawser_V1_IdentityRequest, context: ServerContext) async throws -> Hawser_V1_Party {
        let identity: Party
        do { identity = try serving.work(or: APIError.self).notary.identity } catch {
            // A standby has no identity to give; the client asks another address.
            throw RPCError(code: .unavailable, message: "\(error.code.rawValue): \(error.message)",
                           metadata: ["hawser-error-code": .string(error.code.rawValue)])
        }
        var party = Hawser_V1_Party()
        party.name = identity.name
        party.publicKey = Data(identity.publicKey.rawBytes)
        return party
    }

    /// The answer to one request, or the error the HTTP API would give for it.
    private func decide(_ request: ReadRequest<Hawser_V1_NotarisationRequest>) async -> Hawser_V1_NotarisationResult {
        switch request {
        case .decoded(let proto):
            var result = Hawser_V1_NotarisationResult()
            await decide([(0, proto)]) { _, outcome in result = outcome }
            return result
        case .tooManyStateRefs(let count, _):
            return Self.result(.failure(RequestValidator.tooManyStateRefs(count, max: maxStateRefs)))
        }
    }

    /// Decides streamed requests together and hands each result to `answer` as soon as it is known.
    private func decide(_ items: [ReadRequest<Hawser_V1_StreamedRequest>], answer: (Hawser_V1_StreamedResult) -> Void) async {
        func streamed(_ id: UInt64, _ result: Hawser_V1_NotarisationResult) {
            var out = Hawser_V1_StreamedResult()
            out.id = id
            out.result = result
            answer(out)
        }
        var decoded: [(id: UInt64, request: Hawser_V1_NotarisationRequest)] = []
        for item in items {
            switch item {
            case .decoded(let message) where !message.hasRequest:
                streamed(message.id, Self.result(.failure(APIError(.malformedRequest, "the streamed request has no `request`"))))
            case .decoded(let message): decoded.append((message.id, message.request))
            case .tooManyStateRefs(let count, let id):
                streamed(id, Self.result(.failure(RequestValidator.tooManyStateRefs(count, max: maxStateRefs))))
            }
        }
        await decide(decoded, answer: streamed)
    }

    /// Decodes each request (one that does not decode gets its error at once) and notarises the
    /// others as one batch; `answer` is called once per item, with its id.
    private func decide(_ items: [(id: UInt64, request: Hawser_V1_NotarisationRequest)],
                        answer: (UInt64, Hawser_V1_NotarisationResult) -> Void) async {
        var requests = [NotarisationRequest](), ids = [UInt64]()
        requests.reserveCapacity(items.count)
        ids.reserveCapacity(items.count)
        for item in items {
            do {
                requests.append(try NotarisationRequest(proto: item.request))
                ids.append(item.id)
            } catch {
                answer(item.id, Self.result(.failure(error)))
            }
        }
        guard !requests.isEmpty else { return }
        let notary: Notary
        do { notary = try serving.work(or: APIError.self).notary } catch {
            for id in ids { answer(id, Self.result(.failure(error))) }
            return
        }
        await notary.notarise(batch: requests) { index, result in answer(ids[index], Self.result(result)) }
    }

    private static func result(_ result: Result<NotarisationAnswer, APIError>) -> Hawser_V1_NotarisationResult {
        var out = Hawser_V1_NotarisationResult()
        switch result {
        case .success(let answer): out.answer = answer.proto
        case .failure(let error): out.error = error.proto
        }
        return out
    }
}

/// A counting limit for async tasks: `acquire` waits while `limit` holders have not released.
/// A wait ends when its task is cancelled: a call whose client went away while its stream was
/// held back (its results unread) must end, not wait for places nobody will give back.
final class InFlightSlots: Sendable {
    private struct State {
        var free: Int
        var waiting: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID: UInt64 = 0
    }
    private let state: Mutex<State>

    init(_ limit: Int) { state = Mutex(State(free: limit)) }

    /// Places free now (for tests).
    var free: Int { state.withLock(\.free) }

    /// Takes a place, waiting for one; throws `CancellationError` if the task is cancelled first.
    func acquire() async throws {
        let id = state.withLock { state -> UInt64? in
            guard state.free == 0 else { state.free -= 1; return nil }
            defer { state.nextID += 1 }
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let now = state.withLock { state -> Result<Void, any Error>? in
                    // Checked under the lock: a cancellation either came before (and is seen
                    // here) or comes after the wait is registered (and finds it).
                    if Task.isCancelled { return .failure(CancellationError()) }
                    // A place freed since the first look is taken at once.
                    guard state.free == 0 else { state.free -= 1; return .success(()) }
                    state.waiting.append((id, continuation))
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            // A waiter inherits the place; only when none waits is it freed.
            guard !state.waiting.isEmpty else { state.free += 1; return nil }
            return state.waiting.removeFirst().continuation
        }
        next?.resume()
    }
}

/// A stream's places: one of its own (`grpc.maxInFlightPerStream`) and one of every stream's
/// (`grpc.maxInFlight`) per request read and not yet written back. Whatever it still holds when
/// the call ends (a write that failed, results never written) goes back with `releaseRest`.
final class StreamPlaces: Sendable {
    private let own: InFlightSlots
    private let all: InFlightSlots
    private let held = Atomic(0)

    init(own limit: Int, all: InFlightSlots) {
        own = InFlightSlots(limit)
        self.all = all
    }

    func acquire() async throws {
        try await own.acquire()
        do { try await all.acquire() } catch {
            own.release()
            throw error
        }
        held.add(1, ordering: .relaxed)
    }

    func release(_ count: Int) {
        held.subtract(count, ordering: .relaxed)
        for _ in 0..<count {
            own.release()
            all.release()
        }
    }

    /// Called once the call's tasks have all ended.
    func releaseRest() {
        for _ in 0..<held.exchange(0, ordering: .relaxed) { all.release() }
    }
}

/// A request message as the notary reads it: decoded, or counted in its bytes and found to name
/// more state refs than the notary takes (then not decoded).
enum ReadRequest<Message: Sendable>: Sendable {
    case decoded(Message)
    /// `id`: the streamed request's id (0 for a unary call's request).
    case tooManyStateRefs(count: Int, id: UInt64)
}

/// Decodes a request message only if it names at most `maxStateRefs` state refs, counted in its
/// bytes first (`scan`: its id and its state refs). Bytes the scan cannot read are refused
/// (`INVALID_ARGUMENT`) undecoded too: millions of empty refs before one bad byte would otherwise
/// all be decoded before the decoder found it.
struct ReadRequests<Message: SwiftProtobuf.Message>: MessageDeserializer {
    let maxStateRefs: Int
    let scan: @Sendable (UnsafeRawBufferPointer) -> (id: UInt64, stateRefs: Int)?

    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> ReadRequest<Message> {
        guard let counted = serializedMessageBytes.withUnsafeBytes(scan) else {
            throw RPCError(code: .invalidArgument, message: "the message is not a protobuf \(Message.protoMessageName)")
        }
        guard counted.stateRefs <= maxStateRefs else { return .tooManyStateRefs(count: counted.stateRefs, id: counted.id) }
        return .decoded(try ProtobufDeserializer<Message>().deserialize(serializedMessageBytes))
    }
}
