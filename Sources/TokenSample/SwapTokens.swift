import Flows
import HawserCore
import Sessions
import Vault

/// Swaps tokens between `owner` (a party this node hosts) and `counterparty` (a party of the
/// network, on its own node): `owner` gives `give` of its tokens for `want` of the
/// counterparty's. The protocol (docs/tokens.md): this flow reserves the owner's inputs and
/// proposes; `AcceptSwap` reserves the counterparty's, builds the transaction and signs its
/// agreement; this flow checks the offer, signs its own agreement, notarises (a notarisation
/// request carries one requester signature, so one side, the offerer, notarises; the
/// acceptor's consent is its agreement signature, `TokenChecks.agreementPayload`), records the
/// swap and sends the result. A refusal before the notarisation fails both flows, and each
/// flow's soft locks are released as it ends; an acceptor that gave its agreement and hears no
/// valid result learns from the notary whether the swap happened (`AcceptSwap.settle`).
public struct SwapTokens: Flow {
    public static let flowName = "SwapTokens"
    public static let argumentSchema: FlowSchema? = FlowSchema("Swaps tokens with another party of the network.", fields: [
        .init("owner", .party, "The party this node hosts that gives tokens."),
        .init("counterparty", .party, "The party that gives tokens back."),
        .init("give", .integer(1...Int64.max), "How many tokens the owner gives."),
        .init("want", .integer(1...Int64.max), "How many tokens the owner gets; the counterparty's AcceptSwap takes only a want no larger than give."),
    ])
    public var owner: String
    public var counterparty: String
    public var give: Int64
    public var want: Int64

    public init(owner: String, counterparty: String, give: Int64, want: Int64) {
        self.owner = owner
        self.counterparty = counterparty
        self.give = give
        self.want = want
    }

    public func run(_ context: FlowContext) async throws -> TokenReceipt {
        guard give > 0, want > 0 else { throw FlowFailure("a swap's amounts must be positive, not \(give) and \(want)") }
        guard counterparty != owner else { throw FlowFailure("\(owner) cannot swap with itself") }
        // Checked first: without sessions the flow would stop at its first session call and be
        // parked in the hospital, where an operator can do nothing for it.
        guard context.services.sessions != nil else {
            throw FlowFailure("a swap needs flow sessions, which a node has only as a member of a network (docs/network.md), even between two of its own parties")
        }
        let directory = try context.partyDirectory()
        guard directory.party(named: counterparty) != nil else {
            throw FlowFailure("`\(counterparty)` is not a party of the network: no swap with it is possible")
        }
        try await context.progress("selecting")
        let (inputs, change) = try await TokenSelection.reserve(give, of: owner, context)
        let terms = SwapTerms(offerer: owner, acceptor: counterparty, give: give, want: want,
                              offererInputs: inputs, offererChange: change)
        try await context.progress("proposing")
        let session = try await context.initiateFlow(with: counterparty, as: owner, by: SwapTokens.self)
        let proposal = try FlowCoding.encode(SwapProposal(give: give, want: want, inputs: inputs, change: change))
        let offer = try await context.sendAndReceive(proposal, on: session)
        let tx: TokenTransaction
        do { tx = try TokenChecks.swapOffer(offer, for: terms, directory: directory.party(named:)).0 } catch {
            throw FlowFailure("refused the swap offer of \(counterparty): \(error.reason)")
        }
        let agreement = try await context.sign(TokenChecks.agreementPayload(tx.id), as: owner)
        let (request, answer) = try await TokenNotarisation.notarise(tx, requester: owner, window: nil, context)
        // Final now, whatever the acceptor makes of it: recorded at once (as a payment is), so
        // the owner's spent inputs are never offered again.
        var receipt = try await TokenNotarisation.record(tx, context)
        try await context.progress("sending")
        let closing = try FlowCoding.encode(SwapFinal(signature: agreement, request: request, answer: answer))
        receipt.unacknowledged = try await TokenNotarisation.deliver(closing, of: tx, on: session, context)
        return receipt
    }
}

/// Answers `SwapTokens`: checks the proposal, reserves enough of its party's tokens (a
/// `FlowFailure` if it has too few), builds the swap's transaction and signs its agreement,
/// then checks the offerer's agreement and the notarisation before it records and acknowledges;
/// without them, it settles with the notary (`settle`).
public struct AcceptSwap: ResponderFlow {
    public static let flowName = "AcceptSwap"
    public var session: FlowSession

    public init(session: FlowSession) { self.session = session }

    public func run(_ context: FlowContext) async throws -> TokenReceipt {
        let proposal = try await context.receive(on: session)
        let directory = try context.partyDirectory()
        let notary = try context.notaryVerifier()
        let terms: SwapTerms
        do {
            terms = try TokenChecks.swapProposal(proposal, from: session.counterparty, to: session.ourParty)
            if try await context.patched(TokenChecks.ownInputsPatch) {  // as in `ReceiveTokens`
                try TokenChecks.spendsNoneButTheSender(try await context.vault.states(terms.offererInputs), sender: session.counterparty)
            }
            if try await context.patched(TokenChecks.fairTermsPatch) { try TokenChecks.givesNoMoreThanItGets(terms) }
        } catch let error as TokenRefusal {
            throw FlowFailure("refused the swap proposal of \(session.counterparty): \(error.reason)")
        }
        try await context.progress("selecting")
        let (inputs, change) = try await TokenSelection.reserve(terms.want, of: session.ourParty, context)
        let tx = TokenChecks.swapTransaction(terms, acceptorInputs: inputs, acceptorChange: change, nonce: try await context.random())
        let agreement = try await context.sign(TokenChecks.agreementPayload(tx.id), as: session.ourParty)
        // With the agreement the offerer can have the swap committed, at any time: from here this
        // flow ends only once it knows whether it was.
        try context.transactionMayCommit()
        try await context.progress("offering")
        let refusal: String?
        do {
            let closing = try await context.sendAndReceive(try FlowCoding.encode(SwapOffer(transaction: tx, signature: agreement)), on: session)
            try TokenChecks.swapFinal(closing, offered: tx, terms: terms, directory: directory.party(named:), notary: notary)
            refusal = nil
        } catch let error as SessionError {
            refusal = "\(error)"
        } catch let error as TokenRefusal {
            refusal = "refused the swap's notarisation from \(session.counterparty): \(error.reason)"
        }
        if let refusal { return try await Self.settle(tx, inputs: inputs, terms: terms, change: change, because: refusal, context) }
        let receipt = try await TokenNotarisation.record(tx, context)
        try await context.send(try FlowCoding.encode(TokenAcknowledgement(recorded: tx.id)), on: session)
        return receipt
    }

    /// The offerer's final message did not come, or did not hold: whether the swap was committed
    /// is asked of the notary, by spending the acceptor's inputs back to itself. Committed, that
    /// move ends the swap (the offerer's notarisation is refused from then on) and the flow fails
    /// with `refusal`; refused because the swap spent them first, the swap is recorded and the
    /// flow completes.
    static func settle(_ swap: TokenTransaction, inputs: [StateRef], terms: SwapTerms, change: Int64, because refusal: String,
                       _ context: FlowContext) async throws -> TokenReceipt {
        let acceptor = terms.acceptor
        try await context.progress("settling")
        let back = TokenTransaction(command: "move", inputs: inputs,
                                    outputs: [Token(owner: acceptor, amount: terms.want)] + (change > 0 ? [Token(owner: acceptor, amount: change)] : []),
                                    nonce: try await context.random())
        let (_, answer) = try await TokenNotarisation.ask(back, requester: acceptor, window: nil, context)
        switch answer.outcome {
        case .committed:
            let receipt = try await TokenNotarisation.record(back, context)
            throw FlowFailure("\(refusal); the swap was not committed: \(acceptor)'s tokens were moved back to it in transaction \(receipt.txId)")
        case .conflict(let conflicts) where conflicts.allSatisfy({ $0.consumingTxIdHash == SecureHash.sha256(swap.id.bytes) }):
            var receipt = try await TokenNotarisation.record(swap, context)
            receipt.unacknowledged = refusal
            return receipt
        default:
            throw FlowFailure("\(refusal); asked whether the swap was committed, the notary refused moving \(acceptor)'s tokens back: \(answer.outcome.kindName)")
        }
    }
}
