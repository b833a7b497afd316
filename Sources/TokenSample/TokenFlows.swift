import Flows
import HawserCore
import Vault

/// Issues `amount` new tokens to `owner`, a party this node hosts: builds the transaction,
/// signs the notarisation request as the owner, notarises it (a time window makes an issue
/// notarisable without inputs) and records the new state in the vault.
public struct IssueTokens: Flow {
    public static let flowName = "IssueTokens"
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

/// Moves `amount` tokens from `owner` to `newOwner`, both hosted here: reserves enough of the
/// owner's unconsumed tokens (soft locks, released when the flow ends), pays the change back to
/// the owner, notarises and records.
public struct MoveTokens: Flow {
    public static let flowName = "MoveTokens"
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
        try await context.progress("selecting")
        let query = VaultQuery(type: Token.stateType, owner: owner)
        let target = amount
        let chosen = try await context.vault.selectAndReserve(query) { states in
            var total: Int64 = 0
            var picked = [VaultState]()
            for state in states where total < target {
                guard let token = try? Token(state) else { continue }
                picked.append(state)
                total += token.amount
            }
            return total >= target ? picked : nil
        }
        guard let chosen else { throw FlowFailure("\(owner) holds fewer than \(amount) unreserved tokens") }
        let total = try chosen.reduce(Int64(0)) { $0 + (try Token($1)).amount }
        var outputs = [Token(owner: newOwner, amount: amount)]
        if total > amount { outputs.append(Token(owner: owner, amount: total - amount)) }
        let tx = TokenTransaction(command: "move", inputs: chosen.map(\.ref), outputs: outputs,
                                  nonce: try await context.random())
        return try await TokenNotarisation.finish(tx, requester: owner, window: nil, context)
    }
}

enum TokenNotarisation {
    /// Signs the request as `requester`, notarises, checks the answer and records the transaction.
    static func finish(_ tx: TokenTransaction, requester: String, window: TimeWindow?,
                       _ context: FlowContext) async throws -> TokenReceipt {
        guard let keys = context.services.keys, let party = keys.party(named: requester) else {
            throw FlowFailure("this node does not host party `\(requester)`")
        }
        let notary = try context.notaryIdentity()
        var request = NotarisationRequest(txId: tx.id, inputs: tx.inputs, timeWindow: window, requester: party, signature: [])
        try await context.progress("notarising")
        request.signature = try await context.sign(request.signingPayload(notary: notary.publicKey), as: requester)
        // The notary port has verified the answer's proof and signature.
        let answer = try await context.notarise(request)
        guard answer.outcome.isCommitted else {
            throw FlowFailure("the notary refused transaction \(tx.id): \(answer.outcome.kindName)")
        }
        let update = try tx.vaultUpdate()
        try await context.vault.record(update)
        try await context.progress("recorded")
        return TokenReceipt(txId: tx.id.hex, outputs: update.produced.map(\.ref.description))
    }
}
