import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import HawserCore
import HawserWire
import Synchronization

/// A stand-in for a notary's gRPC service, for the client's side of a stream: it answers each
/// streamed request `committed`, signed with its own key as a batch of one (so `NotaryClient`
/// verifies the answer), except those `hold` picks, which it reads and never answers. A test can
/// await the arrival of any request.
final class FakeGRPCNotary: Sendable {
    let key = SigningKey()
    private let hold: @Sendable (SecureHash) -> Bool
    private let state = Mutex<(arrived: Set<SecureHash>, waiting: [SecureHash: [CheckedContinuation<Void, Never>]])>(([], [:]))

    private init(hold: @escaping @Sendable (SecureHash) -> Bool) { self.hold = hold }

    /// Serves on a free loopback port while `body` runs; `body` gets the `grpc://` address.
    static func with<T: Sendable>(hold: @escaping @Sendable (SecureHash) -> Bool,
                                  _ body: @Sendable (FakeGRPCNotary, String) async throws -> T) async throws -> T {
        let fake = FakeGRPCNotary(hold: hold)
        let server = GRPCServer(transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
                                services: [Service(fake: fake)])
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await server.serve()
                return nil
            }
            defer {
                server.beginGracefulShutdown()
                group.cancelAll()
            }
            guard let port = try await server.listeningAddress?.ipv4?.port else { throw RPCError(code: .internalError, message: "no port") }
            return try await body(fake, "grpc://127.0.0.1:\(port)")
        }
    }

    /// Returns once the request for `txId` has reached the server.
    func arrival(of txId: SecureHash) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.arrived.contains(txId) { return true }
                state.waiting[txId, default: []].append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func arrived(_ txId: SecureHash) {
        let waiting = state.withLock { state in
            state.arrived.insert(txId)
            return state.waiting.removeValue(forKey: txId) ?? []
        }
        for continuation in waiting { continuation.resume() }
    }

    /// The committed answer for `txId`, as a notary signs a batch of one.
    private func committed(_ txId: SecureHash) -> NotarisationAnswer {
        let tree = MerkleTree(leaves: [NotarisationAnswer.leafHash(txId: txId, outcome: .committed)])
        return NotarisationAnswer(txId: txId, outcome: .committed, proof: tree.proof(forLeaf: 0),
                                  signature: key.sign(NotarisationAnswer.batchSigningPayload(root: tree.root)))
    }

    private struct Service: Hawser_V1_Notary.SimpleServiceProtocol {
        let fake: FakeGRPCNotary

        func notarise(request: Hawser_V1_NotarisationRequest, context: ServerContext) async throws -> Hawser_V1_NotarisationResult {
            throw RPCError(code: .unimplemented, message: "the fake serves NotariseStream only")
        }

        func notariseStream(request: RPCAsyncSequence<Hawser_V1_StreamedRequest, any Error>,
                            response: RPCWriter<Hawser_V1_StreamedResult>, context: ServerContext) async throws {
            for try await item in request {
                let txId = try NotarisationRequest(proto: item.request).txId
                fake.arrived(txId)
                guard !fake.hold(txId) else { continue }
                var result = Hawser_V1_StreamedResult()
                result.id = item.id
                result.result.answer = fake.committed(txId).proto
                try await response.write(result)
            }
        }

        func identity(request: Hawser_V1_IdentityRequest, context: ServerContext) async throws -> Hawser_V1_Party {
            var party = Hawser_V1_Party()
            party.name = "O=Fake Notary"
            party.publicKey = Data(fake.key.publicKey.rawBytes)
            return party
        }
    }
}
