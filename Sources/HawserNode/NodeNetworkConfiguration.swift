import Foundation
import HawserCore
import Logging
import Membership

/// The `network` section of the node's configuration (docs/configuration.md, docs/network.md,
/// docs/p2p.md): the network definition the node is a member of, the key that speaks for the node
/// in it, and how it delivers to and takes deliveries from its peers.
public struct NodeNetworkConfiguration: Codable, Sendable, Equatable {
    /// Where the node serves peer-to-peer delivery (gRPC `Peer/Deliver`, plaintext HTTP/2): one of
    /// the node's addresses in the definition must reach it.
    public struct Listen: Codable, Sendable, Equatable {
        /// An IPv4 or IPv6 address, not a name.
        public var host = "127.0.0.1"
        /// 0 picks a free port (tests; peers cannot know it).
        public var port = 0
        /// Most connections open at once (`ListenerCap`); peers need one or a few each.
        public var maxConnections = 1_024
        /// Most of them from one address (an IPv4 address or an IPv6 /64): one host that opened
        /// 1,024 idle connections kept every new peer out (found from outside).
        public var maxConnectionsPerAddress = 64
        /// Most calls open at once, over every connection (`ListenerCap`).
        public var maxCalls = 1_024
        /// Most calls open at once on one connection.
        public var maxConcurrentStreams = 64
        /// A connection with no call open for this long is closed (gracefully, with GOAWAY).
        public var idleTimeoutMillis = 300_000

        enum CodingKeys: String, CodingKey, CaseIterable {
            case host, port, maxConnections, maxConnectionsPerAddress, maxCalls, maxConcurrentStreams, idleTimeoutMillis
        }

        public init(host: String = "127.0.0.1", port: Int = 0) {
            self.host = host
            self.port = port
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Listen()
            host = try c.decodeIfPresent(String.self, forKey: .host) ?? d.host
            port = try c.decode(Int.self, forKey: .port)
            maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? d.maxConnections
            maxConnectionsPerAddress = try c.decodeIfPresent(Int.self, forKey: .maxConnectionsPerAddress) ?? d.maxConnectionsPerAddress
            maxCalls = try c.decodeIfPresent(Int.self, forKey: .maxCalls) ?? d.maxCalls
            maxConcurrentStreams = try c.decodeIfPresent(Int.self, forKey: .maxConcurrentStreams) ?? d.maxConcurrentStreams
            idleTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .idleTimeoutMillis) ?? d.idleTimeoutMillis
        }
    }

    /// The network definition file, relative to the configuration file's directory.
    public var file: String
    /// The node's identity key file (`hawser party new` writes one), relative likewise. Its public
    /// key must be the node's `identityKey` in the definition.
    public var identityKeyFile: String
    /// How often the file is read again for a new version.
    public var reloadIntervalMillis = 5_000
    public var listen: Listen
    /// Largest delivery the node sends or takes (the messages' bytes and the envelope's); every
    /// node of a network should use the same.
    public var maxDeliveryBytes = 4 * 1024 * 1024
    /// The bytes of deliveries the listener takes arriving at once, over all calls (`GRPCMessageHold`).
    public var maxDeliveryBytesInFlight = 16 * 1024 * 1024
    /// How long one delivery may take before the peer's next address is tried.
    public var deliveryTimeoutMillis = 10_000
    /// Most difference between a sender's signing time and this node's clock (docs/p2p.md).
    public var maxClockSkewMillis = 300_000

    static let reloadRange = 100...3_600_000

    enum CodingKeys: String, CodingKey, CaseIterable {
        case file, identityKeyFile, reloadIntervalMillis, listen, maxDeliveryBytes, maxDeliveryBytesInFlight, deliveryTimeoutMillis, maxClockSkewMillis
    }

    public init(file: String, identityKeyFile: String, listen: Listen = Listen()) {
        self.file = file
        self.identityKeyFile = identityKeyFile
        self.listen = listen
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        file = try c.decode(String.self, forKey: .file)
        identityKeyFile = try c.decode(String.self, forKey: .identityKeyFile)
        listen = try c.decode(Listen.self, forKey: .listen)
        reloadIntervalMillis = try c.decodeIfPresent(Int.self, forKey: .reloadIntervalMillis) ?? reloadIntervalMillis
        maxDeliveryBytes = try c.decodeIfPresent(Int.self, forKey: .maxDeliveryBytes) ?? maxDeliveryBytes
        maxDeliveryBytesInFlight = try c.decodeIfPresent(Int.self, forKey: .maxDeliveryBytesInFlight) ?? maxDeliveryBytesInFlight
        deliveryTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .deliveryTimeoutMillis) ?? deliveryTimeoutMillis
        maxClockSkewMillis = try c.decodeIfPresent(Int.self, forKey: .maxClockSkewMillis) ?? maxClockSkewMillis
    }

    func problems(rpcPort: Int) -> [String] {
        var out = [String]()
        if file.isEmpty { out.append("network.file must not be empty") }
        if identityKeyFile.isEmpty { out.append("network.identityKeyFile must not be empty") }
        if !Self.reloadRange.contains(reloadIntervalMillis) {
            out.append("network.reloadIntervalMillis must be \(Self.reloadRange.lowerBound)...\(Self.reloadRange.upperBound)")
        }
        if !ListenCheck.isIPAddress(listen.host) {
            out.append("network.listen.host must be an IP address, such as 127.0.0.1, 0.0.0.0 or ::1 (not `\(listen.host.prefix(100))`)")
        }
        if !(0...65_535).contains(listen.port) { out.append("network.listen.port must be 0...65535 (0 picks a free port)") }
        if listen.port != 0 && listen.port == rpcPort { out.append("network.listen.port must differ from listen.port (\(rpcPort))") }
        out += ListenerCap.problems(listen.maxConnections, option: "network.listen.maxConnections")
        out += ListenerCap.problems(listen.maxConnectionsPerAddress, option: "network.listen.maxConnectionsPerAddress")
        out += ListenerCap.problems(listen.maxCalls, option: "network.listen.maxCalls")
        if !(1...65_535).contains(listen.maxConcurrentStreams) { out.append("network.listen.maxConcurrentStreams must be 1...65535") }
        if !(100...86_400_000).contains(listen.idleTimeoutMillis) { out.append("network.listen.idleTimeoutMillis must be 100...86400000") }
        if !((64 * 1024)...(64 << 20)).contains(maxDeliveryBytes) { out.append("network.maxDeliveryBytes must be 65536...67108864") }
        if maxDeliveryBytesInFlight < maxDeliveryBytes {
            out.append("network.maxDeliveryBytesInFlight must be at least network.maxDeliveryBytes: a delivery of the largest size must fit")
        }
        if !(100...600_000).contains(deliveryTimeoutMillis) { out.append("network.deliveryTimeoutMillis must be 100...600000") }
        if !(1_000...86_400_000).contains(maxClockSkewMillis) { out.append("network.maxClockSkewMillis must be 1000...86400000") }
        return out
    }

    /// Loads the definition and checks that it names this node as configured: `name` is a node of
    /// it, with the identity key of `identityKeyFile` and exactly the parties (and keys) the node
    /// hosts. Returns the watcher that keeps it current, and the identity key.
    func open(name: String, parties: [String: SigningKey], resolve: (String) -> String, logger: Logger)
        throws -> (watcher: MembershipWatcher, identity: SigningKey) {
        let identityKey = try KeyFile.load(resolve(identityKeyFile), option: "network.identityKeyFile").key
        let hosted = parties.mapValues(\.publicKey.base64)
        let watcher: MembershipWatcher
        do {
            watcher = try MembershipWatcher(path: resolve(file), interval: .milliseconds(reloadIntervalMillis), logger: logger) { membership in
                Self.misfits(membership, name: name, identity: identityKey.publicKey.base64, parties: hosted)
            }
        } catch .doesNotFit(let problems) {
            throw ConfigurationError(problems)
        } catch {
            throw ConfigurationError(["network.file: \(error)"])
        }
        return (watcher, identityKey)
    }

    /// What keeps `membership` from describing this node as it is configured: `name` is a node of
    /// it, with the identity key `identity` and exactly the parties (and keys) the node hosts. At
    /// the start each is a configuration problem; later, a definition with any is not taken.
    static func misfits(_ membership: Membership, name: String, identity: String, parties: [String: String]) -> [String] {
        guard let me = membership.node(named: name) else {
            return ["network.file: the network definition (version \(membership.version)) has no node named `\(name)`, this node's name"]
        }
        var problems = [String]()
        if me.identityKey != identity {
            problems.append("network.identityKeyFile: its public key \(identity) is not the identity key of `\(name)` in the network definition")
        }
        let listed = Dictionary(uniqueKeysWithValues: me.parties.map { ($0.name, $0.publicKey) })  // names are unique (`problems`)
        for (party, key) in parties.sorted(by: { $0.key < $1.key }) where listed[party] != key {
            problems.append(listed[party] == nil
                ? "parties: `\(party)` is not a party of `\(name)` in the network definition"
                : "parties: the key of `\(party)` is not the one the network definition gives it")
        }
        for party in listed.keys.sorted() where parties[party] == nil {
            problems.append("parties: the network definition gives `\(name)` the party `\(party)`, which this node does not host")
        }
        return problems
    }
}
