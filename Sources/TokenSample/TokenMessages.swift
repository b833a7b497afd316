import Flows
import Foundation
import HawserCore
import HawserWire

// The payloads the token flows exchange in their sessions (docs/tokens.md): JSON with sorted
// keys (`FlowCoding`), a transaction as base64 of its canonical bytes, notarisation requests and
// answers in the notary API's JSON forms (docs/openapi.json), signatures as base64.

/// A payment (MoveTokens → ReceiveTokens): the transaction, the owner's signed notarisation
/// request and the notary's signed answer, so the receiver can check all three itself.
public struct TokenPayment: Codable, Sendable {
    public var transaction: String
    public var request: NotarisationRequestJSON
    public var answer: NotarisationAnswerJSON

    public init(transaction: TokenTransaction, request: NotarisationRequest, answer: NotarisationAnswer) {
        self.init(transactionBytes: transaction.canonicalBytes, request: request, answer: answer)
    }

    /// From raw transaction bytes: tests forge payments with bytes no honest node sends.
    public init(transactionBytes: [UInt8], request: NotarisationRequest, answer: NotarisationAnswer) {
        transaction = Data(transactionBytes).base64EncodedString()
        self.request = NotarisationRequestJSON(request)
        self.answer = NotarisationAnswerJSON(answer)
    }
}

/// A receiver's answer once it has recorded a transaction (a payment or a swap).
public struct TokenAcknowledgement: Codable, Sendable, Equatable {
    /// The id (hex) of the transaction recorded.
    public var recorded: String
    public init(recorded: SecureHash) { self.recorded = recorded.hex }
}

/// A swap's first message (SwapTokens → AcceptSwap): what the offerer gives and wants, the
/// inputs it spends (reserved on its node) and the change it takes back.
public struct SwapProposal: Codable, Sendable, Equatable {
    public var give: Int64
    public var want: Int64
    /// State refs, `<txid hex>:<index>`.
    public var inputs: [String]
    public var change: Int64

    public init(give: Int64, want: Int64, inputs: [StateRef], change: Int64) {
        self.give = give
        self.want = want
        self.inputs = inputs.map(\.description)
        self.change = change
    }
}

/// The acceptor's answer (AcceptSwap → SwapTokens): the full transaction and the acceptor's
/// signature of its agreement (`TokenChecks.agreementPayload`).
public struct SwapOffer: Codable, Sendable {
    public var transaction: String
    public var signature: String

    public init(transaction: TokenTransaction, signature: [UInt8]) {
        self.transaction = Data(transaction.canonicalBytes).base64EncodedString()
        self.signature = Data(signature).base64EncodedString()
    }
}

/// The offerer's last message (SwapTokens → AcceptSwap): its agreement signature, its signed
/// notarisation request and the notary's answer.
public struct SwapFinal: Codable, Sendable {
    public var signature: String
    public var request: NotarisationRequestJSON
    public var answer: NotarisationAnswerJSON

    public init(signature: [UInt8], request: NotarisationRequest, answer: NotarisationAnswer) {
        self.signature = Data(signature).base64EncodedString()
        self.request = NotarisationRequestJSON(request)
        self.answer = NotarisationAnswerJSON(answer)
    }
}
