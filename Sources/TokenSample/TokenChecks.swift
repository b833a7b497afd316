import Flows
import Foundation
import HawserCore
import HawserWire

/// Why a node refuses what a counterparty sent it: the flow fails with `reason`, which reaches
/// the counterparty as `counterparty_failed`.
public struct TokenRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    /// Not a refusal for good: a transaction the notary committed, its request signed with a key
    /// that the network definition in use does not give the sender. The notary took that key,
    /// so the tokens are spent; which key is the party's is the definition's to settle, and a
    /// receiver that refused for good lost them (found from outside: an edit of the definition,
    /// undone, and a payment made in between). The receiver waits for a definition instead.
    public var waitsForTheDefinition = false
    public init(_ reason: String, waitsForTheDefinition: Bool = false) {
        self.reason = reason
        self.waitsForTheDefinition = waitsForTheDefinition
    }
    public var description: String { reason }
}

/// The checks a node makes of what a counterparty sends in the token flows, as pure functions
/// (no I/O, no clock): everything they need is an argument, so the tests drive them alone.
public enum TokenChecks {
    /// A payment's payload from `sender` to `recipient` (a party this node hosts), checked: the
    /// transaction decodes and is the one the request and answer name, the request is
    /// `sender`'s (signed with its key in `directory`), the notary (`notary`) committed it, and
    /// it is a move paying `recipient` first, any change going back to `sender`. Returns the
    /// transaction to record.
    public static func payment(_ payload: [UInt8], from sender: String, to recipient: String,
                               directory: (String) -> Party?, notary: AnswerVerifier) throws(TokenRefusal) -> TokenTransaction {
        let payment = try decode(TokenPayment.self, payload, "payment")
        let tx = try notarised(transaction: try base64(payment.transaction, "the transaction"),
                               request: try wire(payment.request),
                               answer: try wire(payment.answer),
                               by: sender, directory: directory, notary: notary)
        guard tx.command == "move" else { throw TokenRefusal("the transaction's command is `\(tx.command)`, not `move`") }
        guard let paid = tx.outputs.first, paid.owner == recipient, paid.amount > 0 else {
            throw TokenRefusal("the transaction's first output does not pay \(recipient)")
        }
        for change in tx.outputs.dropFirst() where change.owner != sender || change.amount <= 0 {
            throw TokenRefusal("the transaction has an output for \(change.owner) that is not \(sender)'s change")
        }
        return tx
    }

    /// The `patched` marker of the check below in the flows that make it.
    public static let ownInputsPatch = "spends-none-but-the-sender"

    /// The version marker of `givesNoMoreThanItGets`, so that a swap accepted before it replays as it ran.
    public static let fairTermsPatch = "gives-no-more-than-it-gets"

    /// A swap's acceptor runs without its operator, so it agrees only to terms that cost its party
    /// nothing: it gives (`want`) no more than it gets (`give`). It agreed to any, and a member
    /// took another party's tokens with a swap of 1 for all of them (found from outside).
    public static func givesNoMoreThanItGets(_ terms: SwapTerms) throws(TokenRefusal) {
        guard terms.want <= terms.give else {
            throw TokenRefusal("it asks \(terms.want) tokens of \(terms.acceptor) for \(terms.give): an acceptor gives no more than it gets")
        }
    }

    /// A transaction from `sender` must not spend a state this node holds for another party: the
    /// notary checks who asks, not who owns what it spends, so a member could have a spend of a
    /// receiver's own tokens notarised and then present it as a payment or a swap's inputs, and
    /// the receiver recorded the loss, or signed it (found from outside). `held` are the
    /// transaction's inputs this node's vault holds; a state of `sender` held here (two parties
    /// of one node) is its own to spend.
    public static func spendsNoneButTheSender(_ held: [VaultState], sender: String) throws(TokenRefusal) {
        if let taken = held.first(where: { $0.owner != sender }) {
            throw TokenRefusal("the transaction spends \(taken.ref), a state of \(taken.owner), not of \(sender)")
        }
    }

    /// A transaction notarised at `by`'s request, as a counterparty presents it: its bytes, the
    /// request and the answer. Each must be what it claims; returns the decoded transaction.
    static func notarised(transaction bytes: [UInt8], request: NotarisationRequest, answer: NotarisationAnswer,
                          by owner: String, directory: (String) -> Party?, notary: AnswerVerifier) throws(TokenRefusal) -> TokenTransaction {
        let tx: TokenTransaction
        do { tx = try TokenTransaction(canonicalBytes: bytes) } catch {
            throw TokenRefusal("the transaction does not decode: \(error)")
        }
        let id = tx.id
        guard request.txId == id else { throw TokenRefusal("the notarisation request is for transaction \(request.txId.hex), not \(id.hex)") }
        guard request.inputs == tx.inputs, request.references.isEmpty else {
            throw TokenRefusal("the notarisation request does not spend exactly the transaction's inputs")
        }
        guard request.requester.name == owner else {
            throw TokenRefusal("the notarisation request is \(request.requester.name)'s, not \(owner)'s, who sent it")
        }
        guard let known = directory(owner) else { throw TokenRefusal("\(owner) is not a party of the network") }
        // The key the request names must have signed it; a valid signature by another key than the
        // directory's is checked further (below), not taken: anyone can sign with a key of their own.
        guard request.requester.publicKey.isValidSignature(request.signature, for: request.signingPayload(notary: notary.notaryKey)) else {
            throw TokenRefusal("the notarisation request is not signed with \(owner)'s key")
        }
        do { try notary.verify(answer, for: id) } catch {
            throw TokenRefusal("the notary's answer does not verify: \(error.reason)")
        }
        guard answer.outcome.isCommitted else {
            throw TokenRefusal("the notary did not commit transaction \(id.hex): \(answer.outcome.kindName)")
        }
        guard known.publicKey == request.requester.publicKey else {
            throw TokenRefusal("the notarisation request is signed with a key the network definition in use does not give \(owner) "
                               + "(\(request.requester.publicKey.base64)), and the notary committed it", waitsForTheDefinition: true)
        }
        return tx
    }

    /// The receiver's acknowledgement, which must name `txId`.
    public static func acknowledgement(_ payload: [UInt8], of txId: SecureHash) throws(TokenRefusal) {
        let ack = try decode(TokenAcknowledgement.self, payload, "acknowledgement")
        guard ack.recorded == txId.hex else {
            throw TokenRefusal("the counterparty acknowledged transaction \(ack.recorded.prefix(64)), not \(txId.hex)")
        }
    }

    // MARK: Helpers

    static func decode<T: Decodable>(_ type: T.Type, _ payload: [UInt8], _ what: String) throws(TokenRefusal) -> T {
        do { return try FlowCoding.decode(type, payload) } catch {
            throw TokenRefusal("the \(what) does not decode: \(error)")
        }
    }

    static func base64(_ text: String, _ what: String) throws(TokenRefusal) -> [UInt8] {
        guard let data = Data(base64Encoded: text) else { throw TokenRefusal("\(what) is not base64") }
        return [UInt8](data)
    }

    static func wire(_ json: NotarisationRequestJSON) throws(TokenRefusal) -> NotarisationRequest {
        do { return try json.decoded() } catch { throw TokenRefusal("the notarisation request is malformed: \(error.message)") }
    }

    static func wire(_ json: NotarisationAnswerJSON) throws(TokenRefusal) -> NotarisationAnswer {
        do { return try json.decoded() } catch { throw TokenRefusal("the notary's answer is malformed: \(error.message)") }
    }
}
