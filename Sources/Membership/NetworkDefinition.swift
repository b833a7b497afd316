import Foundation
import HawserCore

/// The network definition (docs/network.md): every member node with its identity key, its
/// parties and the addresses it is reached at, and the network's notaries. The network operator
/// writes it; every node loads it, and takes a new version without a restart (`MembershipWatcher`).
/// Decoding takes any JSON of this shape; `problems` says whether it is a definition a node may use.
public struct NetworkDefinition: Codable, Sendable, Equatable {
    /// A node of the network.
    public struct Node: Codable, Sendable, Equatable {
        /// The node's legal name, unique in the network.
        public var name: String
        /// The node's Ed25519 identity key, base64: what it signs as a node (peer-to-peer messages).
        public var identityKey: String
        /// Where the node is reached for peer-to-peer sessions, tried in turn (an HA pair lists both).
        public var addresses: [String]
        /// The parties whose keys the node holds; their flows run on it.
        public var parties: [Member]

        public init(name: String, identityKey: String, addresses: [String], parties: [Member]) {
            self.name = name
            self.identityKey = identityKey
            self.addresses = addresses
            self.parties = parties
        }
    }

    /// A party, or a notary: a name and an Ed25519 public key.
    public struct Member: Codable, Sendable, Equatable {
        public var name: String
        public var publicKey: String

        public init(name: String, publicKey: String) {
            self.name = name
            self.publicKey = publicKey
        }
    }

    /// A notary of the network: its identity (the key that signs its answers) and its addresses.
    public struct Notary: Codable, Sendable, Equatable {
        public var name: String
        public var publicKey: String
        /// The notary's addresses as a node's `notary.urls` takes them (docs/configuration.md).
        public var addresses: [String]

        public init(name: String, publicKey: String, addresses: [String]) {
            self.name = name
            self.publicKey = publicKey
            self.addresses = addresses
        }
    }

    /// Raised by the operator with every change; a node takes only a higher version than its own.
    public var version: Int
    public var nodes: [Node]
    public var notaries: [Notary]

    public init(version: Int, nodes: [Node], notaries: [Notary]) {
        self.version = version
        self.nodes = nodes
        self.notaries = notaries
    }

    /// Address schemes a notary may advertise (as a node's `notary.urls` takes them).
    public static let notaryAddressSchemes: Set<String> = ["http", "https", "grpc"]
    /// Address schemes a node may advertise for peer-to-peer delivery (docs/p2p.md): gRPC over
    /// plaintext HTTP/2, each delivery signed by the node's identity key.
    public static let nodeAddressSchemes: Set<String> = ["grpc"]

    /// Why this definition cannot be used, one sentence each; empty when it can.
    public var problems: [String] {
        var out = [String]()
        if version < 1 { out.append("version must be at least 1, got \(version)") }
        if nodes.isEmpty { out.append("nodes: a network needs at least one node") }
        if notaries.isEmpty { out.append("notaries: a network needs at least one notary") }
        var names = [String: String](), keys = [String: String]()
        func claim(_ name: String, key: String, as what: String) {
            if name.trimmingCharacters(in: .whitespaces).isEmpty { out.append("\(what): a name must not be empty") }
            if let other = names.updateValue(what, forKey: name) { out.append("\(what) `\(name)`: a \(other) has the same name too") }
            // Canonical base64 only: the unused low bits of the last character gave one key a
            // second spelling, which passed the rule below (found from outside).
            if let parsed = PublicKey(base64: key), parsed.base64 == key {
                if parsed.hasSmallOrder {
                    out.append("\(what) `\(name)`: `\(key)` is a key of small order, for which signatures can be made without its private key")
                }
                if let other = keys.updateValue("\(what) `\(name)`", forKey: parsed.base64) {
                    out.append("\(what) `\(name)`: the key is also \(other)'s")
                }
            } else {
                out.append("\(what) `\(name)`: `\(key)` is not an Ed25519 public key in canonical base64 (32 bytes, padded, unused bits zero)")
            }
        }
        for node in nodes {
            claim(node.name, key: node.identityKey, as: "node")
            if node.addresses.isEmpty { out.append("node `\(node.name)`: needs at least one address") }
            if node.parties.isEmpty { out.append("node `\(node.name)`: needs at least one party") }
            out += node.addresses.compactMap { Self.addressProblem($0, schemes: Self.nodeAddressSchemes).map { "node `\(node.name)`: \($0)" } }
            for party in node.parties { claim(party.name, key: party.publicKey, as: "party") }
        }
        for notary in notaries {
            claim(notary.name, key: notary.publicKey, as: "notary")
            if notary.addresses.isEmpty { out.append("notary `\(notary.name)`: needs at least one address") }
            out += notary.addresses.compactMap {
                Self.addressProblem($0, schemes: Self.notaryAddressSchemes).map { "notary `\(notary.name)`: \($0)" }
            }
        }
        return out
    }

    /// Why `address` is not `SCHEME://HOST:PORT` with a scheme of `schemes`, nil if it is.
    static func addressProblem(_ address: String, schemes: Set<String>) -> String? {
        guard let url = URL(string: address), let scheme = url.scheme?.lowercased(), schemes.contains(scheme),
              let host = url.host, !host.isEmpty, let port = url.port, (1...65_535).contains(port), url.user == nil,
              url.path.isEmpty || url.path == "/", url.query == nil, url.fragment == nil else {
            return "`\(address)` is not an address of the form SCHEME://HOST:PORT with SCHEME "
                + (schemes.count == 1 ? schemes.first! : "one of " + schemes.sorted().joined(separator: ", "))
        }
        return nil
    }

    /// The definition in a file, or why it cannot be read (not JSON of this shape) or used (its
    /// `problems`, and any field this version does not know: a misspelt field is an error, not a
    /// silently missing value).
    public static func load(_ data: Data) throws(MembershipError) -> NetworkDefinition {
        // Strict JSON first, as for a configuration file: a member named twice (`"version"`) is a
        // mistake, never the first one winning (Foundation's reader took the first).
        let json: JSONValue
        do { json = try JSONValue(parsing: Array(data)) } catch {
            throw MembershipError.unreadable("not valid JSON: \(error)")
        }
        let definition: NetworkDefinition
        do { definition = try JSONDecoder().decode(NetworkDefinition.self, from: data) } catch let error as DecodingError {
            throw MembershipError.unreadable(error.plainDescription)
        } catch {
            throw MembershipError.unreadable("\(error)")
        }
        let problems = unknownFields(in: json) + json.nullMembers() + definition.problems
        guard problems.isEmpty else { throw MembershipError.invalid(problems) }
        return definition
    }

    private static func unknownFields(in top: JSONValue) -> [String] {
        var out = [String]()
        func check(_ value: JSONValue?, _ known: Set<String>, _ path: String) {
            for key in (value?.object?.keys.sorted() ?? []) where !known.contains(key) {
                out.append("unknown field `\(path)\(key)`")
            }
        }
        func items(_ value: JSONValue?) -> [JSONValue] { if case .array(let items)? = value { items } else { [] } }
        check(top, ["version", "nodes", "notaries"], "")
        for node in items(top.object?["nodes"]) {
            check(node, ["name", "identityKey", "addresses", "parties"], "nodes[].")
            for party in items(node.object?["parties"]) { check(party, ["name", "publicKey"], "nodes[].parties[].") }
        }
        for notary in items(top.object?["notaries"]) { check(notary, ["name", "publicKey", "addresses"], "notaries[].") }
        return out
    }

    /// The definition as the operator's file holds it (sorted keys, indented).
    public var json: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try! encoder.encode(self)
    }
}

/// Why a network definition was not taken.
public enum MembershipError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file cannot be read, or is not JSON of the definition's shape.
    case unreadable(String)
    /// The definition breaks the rules of `NetworkDefinition.problems`.
    case invalid([String])
    /// Its version is not higher than the one in use (an edit without a new version, or an older file).
    case notNewer(offered: Int, current: Int)
    /// It does not describe the node that reads it as that node is (its name, identity key, parties and their keys).
    case doesNotFit([String])

    public var description: String {
        switch self {
        case .unreadable(let why): "the network definition cannot be read: \(why)"
        case .invalid(let problems): "the network definition is invalid: " + problems.joined(separator: "; ")
        case .notNewer(let offered, let current):
            "the network definition's version \(offered) is not higher than version \(current) in use; raise `version` with every change"
        case .doesNotFit(let problems): "the network definition does not fit this node: " + problems.joined(separator: "; ")
        }
    }
}
