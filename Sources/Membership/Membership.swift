import HawserCore

/// One version of the network, indexed: which node a party lives on, and whether a key belongs to
/// a member. Built only from a definition without problems.
public struct Membership: Sendable, Equatable {
    public let definition: NetworkDefinition
    private let nodesByName: [String: Int]
    private let nodeOfParty: [String: Int]
    private let nodesByKey: [PublicKey: Int]

    public init(_ definition: NetworkDefinition) throws(MembershipError) {
        let problems = definition.problems
        guard problems.isEmpty else { throw MembershipError.invalid(problems) }
        self.definition = definition
        var byName = [String: Int](), ofParty = [String: Int](), byKey = [PublicKey: Int]()
        for (index, node) in definition.nodes.enumerated() {
            byName[node.name] = index
            byKey[PublicKey(base64: node.identityKey)!] = index
            for party in node.parties { ofParty[party.name] = index }
        }
        nodesByName = byName
        nodeOfParty = ofParty
        nodesByKey = byKey
    }

    public var version: Int { definition.version }

    public func node(named name: String) -> NetworkDefinition.Node? { nodesByName[name].map { definition.nodes[$0] } }

    /// The node that hosts `party`, nil for a party outside the network.
    public func node(hosting party: String) -> NetworkDefinition.Node? { nodeOfParty[party].map { definition.nodes[$0] } }

    /// The member node whose identity key is `key`, nil for anyone else: only members may send.
    public func node(withIdentity key: PublicKey) -> NetworkDefinition.Node? { nodesByKey[key].map { definition.nodes[$0] } }

    /// A party of the network with its key, nil if no member node hosts it.
    public func party(named name: String) -> Party? {
        guard let node = node(hosting: name), let member = node.parties.first(where: { $0.name == name }) else { return nil }
        return Party(name: member.name, publicKey: PublicKey(base64: member.publicKey)!)
    }

    public func notary(named name: String) -> NetworkDefinition.Notary? { definition.notaries.first { $0.name == name } }
}

extension Membership {
    /// What a new version changes, by node name: for the log line an operator reads.
    public struct Change: Sendable, Equatable, CustomStringConvertible {
        public var from: Int
        public var to: Int
        public var added: [String]
        public var removed: [String]
        /// Nodes whose key, addresses or parties changed.
        public var changed: [String]
        public var notariesChanged: Bool

        public var description: String {
            var parts = ["version \(from) -> \(to)"]
            if !added.isEmpty { parts.append("added \(added.joined(separator: ", "))") }
            if !removed.isEmpty { parts.append("removed \(removed.joined(separator: ", "))") }
            if !changed.isEmpty { parts.append("changed \(changed.joined(separator: ", "))") }
            if notariesChanged { parts.append("notaries changed") }
            return parts.joined(separator: "; ")
        }
    }

    /// Whether a node using `self` takes `offered`: only a valid definition with a higher version.
    /// Returns the membership to use and what changed.
    public func update(to offered: NetworkDefinition) throws(MembershipError) -> (Membership, Change) {
        let next = try Membership(offered)
        guard offered.version > version else { throw MembershipError.notNewer(offered: offered.version, current: version) }
        let old = Dictionary(uniqueKeysWithValues: definition.nodes.map { ($0.name, $0) })
        let new = Dictionary(uniqueKeysWithValues: offered.nodes.map { ($0.name, $0) })
        let change = Change(from: version, to: offered.version,
                            added: offered.nodes.map(\.name).filter { old[$0] == nil },
                            removed: definition.nodes.map(\.name).filter { new[$0] == nil },
                            changed: offered.nodes.filter { node in old[node.name].map { $0 != node } ?? false }.map(\.name),
                            notariesChanged: definition.notaries != offered.notaries)
        return (next, change)
    }
}
