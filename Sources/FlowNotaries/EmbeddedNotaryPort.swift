import Flows
import HawserCore
import Notary

/// The in-process notary as flows see it: its answers are verified like any notary's (one
/// signature check covers a whole replica batch) and its failures reach flows as
/// `NotaryFailures` says.
public struct EmbeddedNotaryPort: FlowNotary {
    public let notary: Notary
    public let verifier: AnswerVerifier

    public init(_ notary: Notary) {
        self.notary = notary
        verifier = AnswerVerifier(notaryKey: notary.identity.publicKey)
    }

    public var identity: Party { notary.identity }

    public func notarise(_ request: NotarisationRequest) async throws -> NotarisationAnswer {
        try await NotaryFailures.asking {
            let answer = try await notary.notarise(request)
            try verifier.verify(answer, for: request.txId)
            return answer
        }
    }
}
