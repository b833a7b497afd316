import Flows
import HawserCore
import HawserWire
import Notary
import Vault

/// The in-process notary as flows see it. Answers that may change if asked again later
/// (timeout, shutting down, not ready) become transient errors for the hospital to retry.
/// Answers are verified like any notary's; one signature check covers a whole replica batch.
public struct EmbeddedNotaryPort: FlowNotary {
    public let notary: Notary
    private let verifier: AnswerVerifier

    public init(_ notary: Notary) {
        self.notary = notary
        verifier = AnswerVerifier(notaryKey: notary.identity.publicKey)
    }

    public var identity: Party { notary.identity }

    public func notarise(_ request: NotarisationRequest) async throws -> NotarisationAnswer {
        let answer: NotarisationAnswer
        do {
            answer = try await notary.notarise(request)
        } catch let error as APIError where error.code.isRetryable {
            throw TransientFlowError("notary: \(error.message)")
        }
        do { try verifier.verify(answer, for: request.txId) } catch { throw FlowFailure("\(error)") }
        return answer
    }
}

/// The keys of the parties a node hosts, held in memory.
public struct LocalKeys: FlowKeys {
    private let keys: [String: SigningKey]

    public init(_ keys: [String: SigningKey]) { self.keys = keys }

    public func party(named name: String) -> Party? {
        keys[name].map { Party(name: name, publicKey: $0.publicKey) }
    }

    public func sign(_ bytes: [UInt8], as name: String) throws -> [UInt8] {
        guard let key = keys[name] else { throw FlowFailure("this node holds no key for `\(name)`") }
        return key.sign(bytes)
    }

    public func signingKey(of name: String) -> SigningKey? { keys[name] }

    public var parties: [String] { keys.keys.sorted() }
}

/// The sample's flows and helpers.
public enum TokenSample {
    public static func register(into registry: inout FlowRegistry) {
        registry.register(IssueTokens.self)
        registry.register(MoveTokens.self)
    }

    /// Unconsumed tokens per owner (exact: a sum may pass Int64's range).
    public static func balances(_ vault: any VaultStore) async throws -> [String: Int128] {
        Dictionary(uniqueKeysWithValues: try await vault.balances(type: Token.stateType, owner: nil).map { ($0.owner, $0.amount) })
    }
}
