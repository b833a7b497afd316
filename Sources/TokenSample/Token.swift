import Flows
import HawserCore
import Vault

/// The sample's state: an amount of tokens owned by a party.
public struct Token: Codable, Sendable, Equatable {
    public static let stateType = "token"
    public var owner: String
    public var amount: Int64

    public init(owner: String, amount: Int64) {
        self.owner = owner
        self.amount = amount
    }

    /// Reads a token back from a vault state.
    public init(_ state: VaultState) throws {
        self = try FlowCoding.decode(Token.self, state.data)
    }
}

/// The sample's transaction. Its id is the SHA-256 of its canonical bytes, so a replayed flow,
/// which sees the same journaled nonce, builds the same transaction with the same id. Nodes
/// exchange it as those bytes (docs/tokens.md), so a receiver checks the id by hashing them.
public struct TokenTransaction: Sendable, Equatable {
    static let tag = "hawser/token-sample/v1"
    /// "issue", "move" or "swap".
    public var command: String
    public var inputs: [StateRef]
    public var outputs: [Token]
    public var nonce: UInt64

    public init(command: String, inputs: [StateRef], outputs: [Token], nonce: UInt64) {
        self.command = command
        self.inputs = inputs
        self.outputs = outputs
        self.nonce = nonce
    }

    public var id: SecureHash { SecureHash.sha256(canonicalBytes) }

    /// Tag, command, inputs, outputs (owner, amount), nonce, in `CanonicalWriter`'s encoding.
    public var canonicalBytes: [UInt8] {
        var w = CanonicalWriter()
        w.string(Self.tag)
        w.string(command)
        w.list(inputs) { $0.stateRef($1) }
        w.list(outputs) { w, token in
            w.string(token.owner)
            w.i64(token.amount)
        }
        w.u64(nonce)
        return w.bytes
    }

    /// Reads `canonicalBytes` back; throws `CanonicalDecodingError` for anything else.
    public init(canonicalBytes bytes: [UInt8]) throws {
        var r = CanonicalReader(bytes)
        guard try r.string() == Self.tag else { throw CanonicalDecodingError("not a token-sample transaction") }
        command = try r.string()
        inputs = try r.list { try $0.stateRef() }
        outputs = try r.list { Token(owner: try $0.string(), amount: try $0.i64()) }
        nonce = try r.u64()
        try r.expectEnd()
    }

    /// The vault's view of the transaction: the inputs it consumes and the outputs it produces,
    /// of these only those `records` (the owners a node hosts) when given. Indexes stay the
    /// transaction's, whichever outputs are left out.
    func vaultUpdate(recording records: ((String) -> Bool)? = nil) throws -> VaultUpdate {
        let txId = id
        let produced = try outputs.enumerated().filter { records?($0.element.owner) ?? true }.map { index, token in
            VaultState(ref: StateRef(txId: txId, index: UInt32(index)), type: Token.stateType, owner: token.owner,
                       data: try FlowCoding.encode(token), amount: token.amount)
        }
        return VaultUpdate(txId: txId, consumed: inputs, produced: produced)
    }
}

/// What both flows return.
public struct TokenReceipt: Codable, Sendable, Equatable {
    /// The notarised transaction.
    public var txId: String
    /// The refs of the states it produced.
    public var outputs: [String]
    /// Why the counterparty has not acknowledged the transaction (a payment's receiver, a swap's
    /// acceptor); absent once it has. The transaction is final all the same: a receiver that
    /// was down or silent gets it when its node runs again, one that refused does not record it.
    public var unacknowledged: String?

    public init(txId: String, outputs: [String], unacknowledged: String? = nil) {
        self.txId = txId
        self.outputs = outputs
        self.unacknowledged = unacknowledged
    }
}

extension TokenReceipt {
    /// The receipt of a notarised transaction: its id and every output's ref.
    init(_ tx: TokenTransaction) {
        let txId = tx.id
        self.init(txId: txId.hex, outputs: tx.outputs.indices.map { StateRef(txId: txId, index: UInt32($0)).description })
    }
}
