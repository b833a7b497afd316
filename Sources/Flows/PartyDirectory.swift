import HawserCore

/// The parties of the network a flow may deal with, each with the public key it signs with: the
/// node fills it from its network membership. A flow looks a counterparty up here to check what
/// it signed; a name outside the network has no entry (nil), and nothing it signs is accepted.
/// The parties this node hosts are members too, so a node's directory names them as well.
public protocol PartyDirectory: Sendable {
    func party(named name: String) -> Party?
}

extension FlowServices {
    /// The node's directory of the network's parties, if it provides one.
    public var partyDirectory: (any PartyDirectory)? { service((any PartyDirectory).self) }

    /// Whether `name` is a party a flow may name: one this node hosts or one in its directory.
    public func knows(party name: String) -> Bool {
        keys?.party(named: name) != nil || partyDirectory?.party(named: name) != nil
    }
}

extension FlowContext {
    /// The node's directory of the network's parties; throws `MissingServiceError` when the node
    /// does not provide one (a node outside any network).
    public func partyDirectory() throws -> any PartyDirectory {
        guard let directory = services.partyDirectory else { throw MissingServiceError("party directory") }
        return directory
    }
}
