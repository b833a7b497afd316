import Flows
import HawserCore
import Sessions
import Vault

/// Issues `amount` new tokens to `owner`, a party this node hosts: builds the transaction,
/// signs the notarisation request as the owner, notarises it (a time window makes an issue
/// notarisable without inputs) and records the new state in the vault.
public struct IssueTokens: Flow {
    public static let flowName = "IssueTokens"
    public static let argumentSchema: FlowSchema? = FlowSchema("Issues new tokens to a party this node hosts.", fields: [
        .init("owner", .party, "The party that receives the tokens."),
        .init("amount", .integer(1...Int64.max), "How many tokens to issue."),
    ])
    public var owner: String
    public var amount: Int64

    public init(owner: String, amount: Int64) {
        self.owner = owner
        self.amount = amount
    }

    public func run(_ context: FlowContext) async throws -> TokenReceipt {
        guard amount > 0 else { throw FlowFailure("the amount to issue must be positive, not \(amount)") }
        try await context.progress("building")
        let tx = TokenTransaction(command: "issue", inputs: [], outputs: [Token(owner: owner, amount: amount)],
                                  nonce: try await context.random())
        let now = try await context.now()
        let window = TimeWindow(from: Instant(microsecondsSinceEpoch: now.microsecondsSinceEpoch - 60_000_000),
                                until: Instant(microsecondsSinceEpoch: now.microsecondsSinceEpoch + 300_000_000))
        return try await TokenNotarisation.finish(tx, requester: owner, window: window, context)
    }
}

/// Moves `amount` tokens from `owner`, a party this node hosts, to `newOwner`: reserves enough of
/// the owner's unconsumed tokens (soft locks, released when the flow ends), pays the change back
/// to the owner and notarises. When this node hosts `newOwner` too it then records the
/// transaction; otherwise `newOwner` must be a party of the network (`PartyDirectory`), and the
/// flow records its own side as soon as the notary has committed, then sends `newOwner` the
/// transaction with the signed request and the notary's answer (`ReceiveTokens` checks and
/// records them) and completes once it has the acknowledgement, or once it knows there will be
/// none (docs/tokens.md): the payment is final either way, so the flow does not fail then.
public struct MoveTokens: Flow {
    public static let flowName = "MoveTokens"
    public static let argumentSchema: FlowSchema? = FlowSchema("Moves tokens from a party this node hosts to a party of the network.", fields: [
        .init("owner", .party, "The party whose tokens move."),
        .init("newOwner", .party, "The party that receives them."),
        .init("amount", .integer(1...Int64.max), "How many tokens to move."),
    ])
    public var owner: String
    public var newOwner: String
    public var amount: Int64

    public init(owner: String, newOwner: String, amount: Int64) {
        self.owner = owner
        self.newOwner = newOwner
        self.amount = amount
    }

    public func run(_ context: FlowContext) async throws -> TokenReceipt {
        guard amount > 0 else { throw FlowFailure("the amount to move must be positive, not \(amount)") }
        let local = context.services.keys?.party(named: newOwner) != nil
        if !local, try context.partyDirectory().party(named: newOwner) == nil {
            throw FlowFailure("`\(newOwner)` is not a party of the network: no tokens can move to it")
        }
        try await context.progress("selecting")
        let (chosen, change) = try await TokenSelection.reserve(amount, of: owner, context)
        var outputs = [Token(owner: newOwner, amount: amount)]
        if change > 0 { outputs.append(Token(owner: owner, amount: change)) }
        let tx = TokenTransaction(command: "move", inputs: chosen, outputs: outputs, nonce: try await context.random())
        guard !local else { return try await TokenNotarisation.finish(tx, requester: owner, window: nil, context) }
        let (request, answer) = try await TokenNotarisation.notarise(tx, requester: owner, window: nil, context)
        // The transaction is final now, whatever the counterparty makes of it: the owner's
        // inputs are spent, so the vault says so at once (a later move must not pick them).
        var receipt = try await TokenNotarisation.record(tx, context)
        try await context.progress("sending")
        let session = try await context.initiateFlow(with: newOwner, as: owner, by: MoveTokens.self)
        let payment = try FlowCoding.encode(TokenPayment(transaction: tx, request: request, answer: answer))
        receipt.unacknowledged = try await TokenNotarisation.deliver(payment, of: tx, on: session, context)
        return receipt
    }
}

/// Reserving a party's tokens to spend.
enum TokenSelection {
    /// The most tokens one transaction spends: a notary takes at most `limits.maxStateRefs`
    /// (10,000 by default) state refs a request. A move that needed more reserved them, was
    /// refused by the notary, and, having asked it, could be neither killed nor mended, its
    /// tokens locked for good (found from outside).
    static let maxInputs = NotarisationRequest.defaultMaxStateRefs

    /// What is left to cover, and how many tokens are taken so far.
    struct Cover: Sendable {
        var left: Int64
        var taken = 0
    }

    /// Reserves enough of `owner`'s unconsumed tokens to cover `amount` (soft locks held until the
    /// flow ends) and returns their refs and the change; a `FlowFailure` if the owner has too few.
    static func reserve(_ amount: Int64, of owner: String, _ context: FlowContext) async throws -> (refs: [StateRef], change: Int64) {
        // Said first: a party of another node holds no tokens here, and "holds fewer" would mislead.
        guard context.services.keys?.party(named: owner) != nil else {
            throw FlowFailure("this node does not host party `\(owner)`: only its own node can spend its tokens")
        }
        // Take the owner's tokens in recording order until they cover the amount; what is left
        // to cover only shrinks, so nothing here can overflow, whatever the amounts.
        let chosen = try await context.vault.selectAndReserve(VaultQuery(type: Token.stateType, owner: owner),
                                                              from: Cover(left: amount)) { cover, state in
            guard let token = try? Token(state), token.amount > 0 else { return .skip }
            guard cover.taken < maxInputs else {
                throw FlowFailure("covering \(amount) takes more than \(maxInputs) of \(owner)'s tokens, more than a notary takes in one "
                                  + "transaction: move less at once")
            }
            cover.taken += 1
            cover.left -= min(cover.left, token.amount)
            return cover.left == 0 ? .takeAndStop : .take
        }
        guard let chosen else { throw FlowFailure("\(owner) holds fewer than \(amount) unreserved tokens") }
        // The inputs may add up to more than an Int64 holds; the change is less than the last
        // input taken, so it fits, but it is checked all the same.
        var total: Int128 = 0
        for state in chosen { total += Int128(try Token(state).amount) }
        guard let change = Int64(exactly: total - Int128(amount)), change >= 0 else {
            throw FlowFailure("the tokens chosen add up to \(total), which cannot pay \(amount) with change")
        }
        return (chosen.map(\.ref), change)
    }
}

enum TokenNotarisation {
    /// Signs the request as `requester`, notarises, checks the answer and records the transaction.
    static func finish(_ tx: TokenTransaction, requester: String, window: TimeWindow?,
                       _ context: FlowContext) async throws -> TokenReceipt {
        _ = try await notarise(tx, requester: requester, window: window, context)
        return try await record(tx, context)
    }

    /// Signs the request as `requester` (a party this node hosts) and notarises; a `FlowFailure`
    /// unless the notary committed. Returns the signed request and the answer.
    static func notarise(_ tx: TokenTransaction, requester: String, window: TimeWindow?,
                         _ context: FlowContext) async throws -> (NotarisationRequest, NotarisationAnswer) {
        let (request, answer) = try await ask(tx, requester: requester, window: window, context)
        guard answer.outcome.isCommitted else {
            throw FlowFailure("the notary refused transaction \(tx.id): \(answer.outcome.kindName)")
        }
        return (request, answer)
    }

    /// Signs the request as `requester` and asks the notary, whatever it answers.
    static func ask(_ tx: TokenTransaction, requester: String, window: TimeWindow?,
                    _ context: FlowContext) async throws -> (NotarisationRequest, NotarisationAnswer) {
        guard let keys = context.services.keys, let party = keys.party(named: requester) else {
            throw FlowFailure("this node does not host party `\(requester)`")
        }
        let notary = try context.notaryIdentity()
        var request = NotarisationRequest(txId: tx.id, inputs: tx.inputs, timeWindow: window, requester: party, signature: [])
        try await context.progress("notarising")
        request.signature = try await context.sign(request.signingPayload(notary: notary.publicKey), as: requester)
        // The notary port has verified the answer's proof and signature.
        return (request, try await context.notarise(request))
    }

    /// Sends `payload` on `session` and waits for the counterparty's acknowledgement that it has
    /// recorded `tx`, which is final already: a counterparty that fails, refuses, closes or stays
    /// silent past the session timeout does not undo it. Returns why there is no acknowledgement
    /// (nil: there is one), for the receipt.
    static func deliver(_ payload: [UInt8], of tx: TokenTransaction, on session: FlowSession,
                        _ context: FlowContext) async throws -> String? {
        do {
            try TokenChecks.acknowledgement(try await context.sendAndReceive(payload, on: session), of: tx.id)
            return nil
        } catch let error as SessionError {
            return error.description
        } catch let refusal as TokenRefusal {
            return refusal.reason
        }
    }

    /// Records the notarised `tx` in the vault: the inputs it spends (those the vault does not
    /// hold are not there to change) and the outputs of the parties this node hosts. Once: the
    /// journal and the vault both make a second recording change nothing.
    static func record(_ tx: TokenTransaction, _ context: FlowContext) async throws -> TokenReceipt {
        let keys = context.services.keys
        try await context.vault.record(try tx.vaultUpdate { keys?.party(named: $0) != nil })
        try await context.progress("recorded")
        return TokenReceipt(tx)
    }
}
