import Foundation
import GRPCCore
import HawserCore
import HawserWire
import Logging
import Notary
import Synchronization

/// The notary's gRPC service (docs/notary-protocol.md, "gRPC"): the same requests and answers as
/// `POST /v1/notarise`, decided by the same notary. A refusal is an answer message holding the
/// HTTP API's `Error` (same code, same sentence); a gRPC status other than OK means the call
/// itself failed (transport, limits, shutdown) and says nothing about any request.
struct NotaryGRPCService: Hawser_V1_Notary.SimpleServiceProtocol {
    let serving: ServingState<NotaryTerm>
    /// Most requests of one stream decided at once (`grpc.maxInFlightPerStream`).
    let maxInFlightPerStream: Int
    let logger: Logger

    func notarise(request: Hawser_V1_NotarisationRequest, context: ServerContext) async throws -> Hawser_V1_NotarisationResult {
        await decide(request)
    }

    func notariseStream(request: RPCAsyncSequence<Hawser_V1_StreamedRequest, any Error>,
                        response: RPCWriter<Hawser_V1_StreamedResult>, context: ServerContext) async throws {
        let slots = InFlightSlots(maxInFlightPerStream)
        try await withThrowingDiscardingTaskGroup { group in
            for try await item in request {
                // At the limit the stream is not read on: HTTP/2 flow control then holds the client back.
                await slots.acquire()
                group.addTask {
                    defer { slots.release() }
                    var out = Hawser_V1_StreamedResult()
                    out.id = item.id
                    out.result = await decide(item.request)
                    // The writer takes writes from many tasks at once (NIOAsyncWriter); each is one message.
                    try await response.write(out)
                }
            }
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
    private func decide(_ proto: Hawser_V1_NotarisationRequest) async -> Hawser_V1_NotarisationResult {
        var result = Hawser_V1_NotarisationResult()
        do {
            let request = try NotarisationRequest(proto: proto)
            result.answer = try await serving.work(or: APIError.self).notary.notarise(request).proto
        } catch let error as APIError {
            result.error = error.proto
        } catch {
            logger.error("gRPC request failed", metadata: ["error": "\(error)"])
            result.error = APIError(.internalError, "the notary failed to handle the request; it has been logged").proto
        }
        return result
    }
}

/// A counting limit for async tasks: `acquire` waits while `limit` holders have not released.
final class InFlightSlots: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    init(_ limit: Int) { state = Mutex(State(free: limit)) }

    func acquire() async {
        let taken = state.withLock { state -> Bool in
            guard state.free > 0 else { return false }
            state.free -= 1
            return true
        }
        if taken { return }
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                // A slot freed between the two locks is taken at once.
                guard state.free > 0 else { state.waiting.append(continuation); return false }
                state.free -= 1
                return true
            }
            if now { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            // A waiter inherits the slot; only when none waits is it freed.
            guard !state.waiting.isEmpty else { state.free += 1; return nil }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
