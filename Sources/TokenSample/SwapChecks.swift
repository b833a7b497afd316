import Flows
import Foundation
import HawserCore

/// A swap's terms once checked: the proposal with its refs parsed.
public struct SwapTerms: Sendable, Equatable {
    public var offerer: String
    public var acceptor: String
    public var give: Int64
    public var want: Int64
    public var offererInputs: [StateRef]
    public var offererChange: Int64
}

extension TokenChecks {
    /// The bytes each party of a swap signs to agree to its transaction. A notarisation request
    /// carries one requester's signature, and the notary checks only that one: the acceptor's
    /// consent to spend its inputs is this signature, which the offerer keeps with the
    /// transaction; the offerer signs the same to show the acceptor it agreed too.
    public static func agreementPayload(_ txId: SecureHash) -> [UInt8] {
        var w = CanonicalWriter()
        w.string("hawser/token-sample/agreement/v1")
        w.hash(txId)
        return w.bytes
    }

    /// The one layout of a swap's transaction, which both sides build: the offerer's inputs then
    /// the acceptor's; outputs `give` to the acceptor, `want` to the offerer, then the offerer's
    /// change and the acceptor's change, each only if positive.
    public static func swapTransaction(_ terms: SwapTerms, acceptorInputs: [StateRef], acceptorChange: Int64,
                                       nonce: UInt64) -> TokenTransaction {
        var outputs = [Token(owner: terms.acceptor, amount: terms.give), Token(owner: terms.offerer, amount: terms.want)]
        if terms.offererChange > 0 { outputs.append(Token(owner: terms.offerer, amount: terms.offererChange)) }
        if acceptorChange > 0 { outputs.append(Token(owner: terms.acceptor, amount: acceptorChange)) }
        return TokenTransaction(command: "swap", inputs: terms.offererInputs + acceptorInputs, outputs: outputs, nonce: nonce)
    }

    /// A proposal from `offerer` to `acceptor` (this node's party), checked for shape.
    public static func swapProposal(_ payload: [UInt8], from offerer: String, to acceptor: String) throws(TokenRefusal) -> SwapTerms {
        let proposal = try decode(SwapProposal.self, payload, "swap proposal")
        guard proposal.give > 0, proposal.want > 0, proposal.change >= 0 else {
            throw TokenRefusal("a swap's amounts must be positive and its change not negative")
        }
        var inputs = [StateRef]()
        for text in proposal.inputs {
            guard let ref = StateRef(text) else { throw TokenRefusal("`\(text.prefix(100))` is not a state ref") }
            inputs.append(ref)
        }
        guard !inputs.isEmpty, Set(inputs).count == inputs.count else {
            throw TokenRefusal("a swap proposal must spend some inputs, each once")
        }
        return SwapTerms(offerer: offerer, acceptor: acceptor, give: proposal.give, want: proposal.want,
                         offererInputs: inputs, offererChange: proposal.change)
    }

    /// The acceptor's offer, checked by the offerer: the transaction is exactly the swap's
    /// layout for `terms` (whatever the acceptor's inputs, change and nonce), it spends none of
    /// the offerer's states but those proposed, and the acceptor signed it with its key in
    /// `directory`. Returns the transaction and the acceptor's signature.
    public static func swapOffer(_ payload: [UInt8], for terms: SwapTerms,
                                 directory: (String) -> Party?) throws(TokenRefusal) -> (TokenTransaction, [UInt8]) {
        let offer = try decode(SwapOffer.self, payload, "swap offer")
        let bytes = try base64(offer.transaction, "the transaction")
        let tx: TokenTransaction
        do { tx = try TokenTransaction(canonicalBytes: bytes) } catch {
            throw TokenRefusal("the transaction does not decode: \(error)")
        }
        let theirs = Array(tx.inputs.dropFirst(terms.offererInputs.count))
        let change = tx.outputs.count > 2 + (terms.offererChange > 0 ? 1 : 0) ? tx.outputs.last!.amount : 0
        guard change >= 0, !theirs.isEmpty, Set(tx.inputs).count == tx.inputs.count,
              tx == swapTransaction(terms, acceptorInputs: theirs, acceptorChange: change, nonce: tx.nonce) else {
            throw TokenRefusal("the swap transaction is not the one proposed")
        }
        let signature = try base64(offer.signature, "the signature")
        guard let acceptor = directory(terms.acceptor),
              acceptor.publicKey.isValidSignature(signature, for: agreementPayload(tx.id)) else {
            throw TokenRefusal("the swap transaction is not signed with \(terms.acceptor)'s key")
        }
        return (tx, signature)
    }

    /// The offerer's last message, checked by the acceptor against the transaction it offered:
    /// the offerer agreed (its signature under its key in `directory`), and the transaction was
    /// notarised at its request and committed.
    public static func swapFinal(_ payload: [UInt8], offered tx: TokenTransaction, terms: SwapTerms,
                                 directory: (String) -> Party?, notary: AnswerVerifier) throws(TokenRefusal) {
        let closing = try decode(SwapFinal.self, payload, "swap's final message")
        guard let offerer = directory(terms.offerer),
              offerer.publicKey.isValidSignature(try base64(closing.signature, "the signature"), for: agreementPayload(tx.id)) else {
            throw TokenRefusal("the swap transaction is not signed with \(terms.offerer)'s key")
        }
        _ = try notarised(transaction: tx.canonicalBytes, request: try wire(closing.request),
                          answer: try wire(closing.answer),
                          by: terms.offerer, directory: directory, notary: notary)
    }
}
