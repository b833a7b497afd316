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
        registry.registerResponder(ReceiveTokens.self, for: MoveTokens.self)
        registry.register(SwapTokens.self)
        registry.registerResponder(AcceptSwap.self, for: SwapTokens.self)
    }

    /// Unconsumed tokens per owner (exact: a sum may pass Int64's range).
    public static func balances(_ vault: any VaultStore) async throws -> [String: Int128] {
        Dictionary(uniqueKeysWithValues: try await vault.balances(type: Token.stateType, owner: nil).map { ($0.owner, $0.amount) })
    }
}
