import GRPCCore
import HawserCore
import HawserWire

/// `NotaryClient`'s attempts over gRPC: the same retries, failover and verification as over HTTP
/// (`withRetries`, `check`), with the result message in place of an HTTP response.
extension NotaryClient {
    func notariseOverGRPC(_ request: NotarisationRequest, verifier: AnswerVerifier) async throws -> NotarisationAnswer {
        let message = request.proto
        return try await withRetries { base, timeout in
            let result = try await channel(base).notarise(message, timeout: timeout)
            let answer = try Self.answer(in: result, txId: request.txId)
            try Self.check(answer, for: request.txId, with: verifier)
            return answer
        }
    }

    func identityOverGRPC() async throws -> Party {
        try await withRetries { base, timeout in
            let party = try await channel(base).identity(timeout: timeout)
            guard let key = PublicKey(rawBytes: [UInt8](party.publicKey)) else {
                throw NotaryClientError.invalidAnswer(txId: nil, reason: "the identity's public key is not an Ed25519 key")
            }
            return Party(name: party.name, publicKey: key)
        }
    }

    /// Refuses a call the gRPC service does not offer.
    func httpOnly(_ call: String) throws(NotaryClientError) {
        guard channels.isEmpty else {
            throw .invalidConfiguration("\(call) is served over HTTP only; this client was given grpc:// addresses")
        }
    }

    private func channel(_ base: String) -> GRPCNotaryChannel {
        // `withRetries` hands out only the client's own addresses here, each of which has a
        // channel: over gRPC no standby's (HTTP) address is followed.
        guard let channel = channels[base] else { preconditionFailure("no gRPC channel for `\(base)`") }
        return channel
    }

    /// The answer a result holds; a refusal is thrown as the HTTP API would throw it (a retryable
    /// one as `Hinted`, without an address to follow: a standby names an HTTP address).
    static func answer(in result: Hawser_V1_NotarisationResult, txId: SecureHash) throws -> NotarisationAnswer {
        switch result.result {
        case .answer(let proto)?:
            do { return try NotarisationAnswer(proto: proto) } catch {
                throw NotaryClientError.invalidAnswer(txId: txId, reason: "the answer does not decode: \(error)")
            }
        case .error(let proto)?:
            let error = apiError(proto, status: 200)
            guard error.code.isRetryable else { throw error }
            throw Hinted(error: error, active: nil, retryAfter: nil)
        case nil:
            throw NotaryClientError.invalidAnswer(txId: txId, reason: "the result holds neither answer nor error")
        }
    }
}
