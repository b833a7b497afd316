import Flows
import HawserCore
import Vault

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

    /// Unconsumed tokens per owner.
    public static func balances(_ vault: any VaultStore) async throws -> [String: Int64] {
        var out = [String: Int64]()
        for state in try await vault.query(VaultQuery(type: Token.stateType, limit: Int.max)) {
            out[state.owner, default: 0] += try Token(state).amount
        }
        return out
    }
}
