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
/// which sees the same journaled nonce, builds the same transaction with the same id.
struct TokenTransaction {
    var command: String
    var inputs: [StateRef]
    var outputs: [Token]
    var nonce: UInt64

    var id: SecureHash {
        var w = CanonicalWriter()
        w.string("hawser/token-sample/v1")
        w.string(command)
        w.list(inputs) { $0.stateRef($1) }
        w.list(outputs) { w, token in
            w.string(token.owner)
            w.i64(token.amount)
        }
        w.u64(nonce)
        return SecureHash.sha256(w.bytes)
    }

    /// The vault's view of the transaction: the inputs it consumes and the outputs it produces.
    func vaultUpdate() throws -> VaultUpdate {
        let txId = id
        return VaultUpdate(txId: txId, consumed: inputs, produced: try outputs.enumerated().map { index, token in
            VaultState(ref: StateRef(txId: txId, index: UInt32(index)), type: Token.stateType, owner: token.owner,
                       data: try FlowCoding.encode(token), amount: token.amount)
        })
    }
}

/// What both flows return.
public struct TokenReceipt: Codable, Sendable, Equatable {
    /// The notarised transaction.
    public var txId: String
    /// The refs of the states it produced.
    public var outputs: [String]
}
