import Flows
import HawserClient
import HawserCore

/// A notary reached over its HTTP API or its gRPC service (`grpc://` addresses; a standalone
/// notary, a hot-warm pair, the replicas of a JetStream cluster) as flows see it. Every request goes through one `NotaryClient` holding all
/// of the notary's addresses: it fails over between them and resends the same request while its
/// retry policy allows (safe: the notary is idempotent per transaction id), and it verifies every
/// answer against `identity`'s key, pinned from configuration and never fetched. Failures reach
/// flows as `NotaryFailures` says. Call `shutdown()` once no flow uses the port any more.
public struct RemoteNotaryPort: FlowNotary {
    public let identity: Party
    public let verifier: AnswerVerifier
    private let client: NotaryClient

    /// - Parameters:
    ///   - identity: the notary's name and public key; answers signed by any other key are refused.
    ///   - urls: the notary's base URLs, tried in turn.
    ///   - retryPolicy: how long one notarisation may keep trying before the flow goes to the hospital.
    public init(identity: Party, urls: [String], retryPolicy: RetryPolicy) throws(NotaryClientError) {
        self.identity = identity
        verifier = AnswerVerifier(notaryKey: identity.publicKey)
        client = try NotaryClient(urls: urls, notaryKey: identity.publicKey, retryPolicy: retryPolicy)
    }

    public func notarise(_ request: NotarisationRequest) async throws -> NotarisationAnswer {
        try await NotaryFailures.asking { try await client.notarise(request) }
    }

    /// Closes the port's HTTP and gRPC connections.
    public func shutdown() async throws { try await client.shutdown() }
}
