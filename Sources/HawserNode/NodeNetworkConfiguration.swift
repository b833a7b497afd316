import Foundation
import HawserCore
import Logging
import Membership

/// The `network` section of the node's configuration (docs/configuration.md, docs/network.md):
/// the network definition the node is a member of, and the key that speaks for the node in it.
public struct NodeNetworkConfiguration: Codable, Sendable, Equatable {
    /// The network definition file, relative to the configuration file's directory.
    public var file: String
    /// The node's identity key file (`hawser party new` writes one), relative likewise. Its public
    /// key must be the node's `identityKey` in the definition.
    public var identityKeyFile: String
    /// How often the file is read again for a new version.
    public var reloadIntervalMillis = 5_000

    static let reloadRange = 100...3_600_000

    enum CodingKeys: String, CodingKey, CaseIterable { case file, identityKeyFile, reloadIntervalMillis }

    public init(file: String, identityKeyFile: String) {
        self.file = file
        self.identityKeyFile = identityKeyFile
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        file = try c.decode(String.self, forKey: .file)
        identityKeyFile = try c.decode(String.self, forKey: .identityKeyFile)
        reloadIntervalMillis = try c.decodeIfPresent(Int.self, forKey: .reloadIntervalMillis) ?? reloadIntervalMillis
    }

    var problems: [String] {
        var out = [String]()
        if file.isEmpty { out.append("network.file must not be empty") }
        if identityKeyFile.isEmpty { out.append("network.identityKeyFile must not be empty") }
        if !Self.reloadRange.contains(reloadIntervalMillis) {
            out.append("network.reloadIntervalMillis must be \(Self.reloadRange.lowerBound)...\(Self.reloadRange.upperBound)")
        }
        return out
    }

    /// Loads the definition and checks that it names this node as configured: `name` is a node of
    /// it, with the identity key of `identityKeyFile` and exactly the parties (and keys) the node
    /// hosts. Returns the watcher that keeps it current.
    func open(name: String, parties: [String: SigningKey], resolve: (String) -> String, logger: Logger) throws -> MembershipWatcher {
        let watcher: MembershipWatcher
        do { watcher = try MembershipWatcher(path: resolve(file), interval: .milliseconds(reloadIntervalMillis), logger: logger) } catch {
            throw ConfigurationError(["network.file: \(error)"])
        }
        let identity = try KeyFile.load(resolve(identityKeyFile)).key.publicKey
        let membership = watcher.current
        guard let me = membership.node(named: name) else {
            throw ConfigurationError(["network.file: the network definition (version \(membership.version)) has no node named `\(name)`, this node's name"])
        }
        var problems = [String]()
        if me.identityKey != identity.base64 {
            problems.append("network.identityKeyFile: its public key \(identity.base64) is not the identity key of `\(name)` in the network definition")
        }
        let listed = Dictionary(uniqueKeysWithValues: me.parties.map { ($0.name, $0.publicKey) })  // names are unique (`problems`)
        for (party, key) in parties.sorted(by: { $0.key < $1.key }) where listed[party] != key.publicKey.base64 {
            problems.append(listed[party] == nil
                ? "parties: `\(party)` is not a party of `\(name)` in the network definition"
                : "parties: the key of `\(party)` is not the one the network definition gives it")
        }
        for party in listed.keys.sorted() where parties[party] == nil {
            problems.append("parties: the network definition gives `\(name)` the party `\(party)`, which this node does not host")
        }
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        return watcher
    }
}
