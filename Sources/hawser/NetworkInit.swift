import ArgumentParser
import Foundation
import HawserCore
import HawserNode
import Membership

/// `hawser network init DIR`: keys and configurations for a whole local network (docs/network.md):
/// a notary (one process, or three replicas of a JetStream cluster) and one node per name, each
/// hosting one party, all on loopback, with the network definition that names them.
struct NetworkInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create keys, configurations and the network definition of a local network (docs/network.md).")

    enum NotaryKind: String, ExpressibleByArgument, CaseIterable { case single, cluster }

    @Argument(help: "The directory to create the network in (must not hold a network.json yet).")
    var dir: String
    @Option(help: "The nodes, by short name, comma-separated: each hosts the party O=NAME, L=London, C=GB.")
    var nodes: String = "Alice,Bob,Charlie"
    @Option(help: "single: one notary process; cluster: three replicas on a 3-server JetStream cluster.")
    var notary: NotaryKind = .single
    @Option(help: "The first port used; the network takes ports BASE to BASE+202 (docs/network.md).")
    var basePort = 10_000

    static let notaryName = "O=Hawser Notary, L=London, C=GB"

    func validate() throws {
        let names = nodeNames
        if names.isEmpty { throw ValidationError("--nodes names no node") }
        if Set(names.map { $0.lowercased() }).count != names.count { throw ValidationError("--nodes names a node twice") }
        if let bad = names.first(where: { $0.isEmpty || !$0.allSatisfy { $0.isLetter || $0.isNumber } }) {
            throw ValidationError("--nodes: `\(bad)` is not a short name of letters and digits")
        }
        if names.count > 10 { throw ValidationError("--nodes: at most 10 nodes (the port layout has room for 10)") }
        if !(1024...65_300).contains(basePort) { throw ValidationError("--base-port must be 1024...65300") }
    }

    /// Empty names kept (`Alice,,Bob`), so that validation refuses them.
    var nodeNames: [String] { nodes.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } }

    func run() throws {
        let root = URL(fileURLWithPath: dir).standardizedFileURL.path
        let definitionPath = root + "/network.json"
        guard !FileManager.default.fileExists(atPath: definitionPath) else { throw CLIError("\(definitionPath) already exists") }
        var lines = [String]()
        // Each node's party key first: the notary authorises them.
        let parties = nodeNames.map { (name: $0, party: "O=\($0), L=London, C=GB", key: SigningKey()) }
        let authorised = parties.map { "\($0.party)=\($0.key.publicKey.base64)" }

        let (notaryKey, notaryAddresses) = try makeNotary(root: root, authorised: authorised, lines: &lines)
        var members = [NetworkDefinition.Node]()
        for (index, party) in parties.enumerated() {
            let directory = root + "/" + party.name.lowercased()
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try KeyFile(name: party.party, key: party.key).save(directory + "/party.key")
            let identity = SigningKey()
            let nodeName = "O=\(party.name) Node, L=London, C=GB"
            try KeyFile(name: nodeName, key: identity).save(directory + "/identity.key")
            // (Its summary is for a node on its own; this command says what concerns the network.)
            _ = try NodeCommand.initialise(
                directory: directory, port: basePort + 10 + index, parties: [], partyKeys: [directory + "/party.key"], user: "admin",
                password: nil, notary: .remote(urls: notaryAddresses, publicKey: notaryKey.base64, name: Self.notaryName))
            // Named as the network names it, and a member of it.
            var configuration = try NodeConfiguration.load(directory + "/node.json")
            configuration.name = nodeName
            configuration.parties = [.init(name: party.party, keyFile: "party.key")]
            configuration.network = NodeNetworkConfiguration(file: "../network.json", identityKeyFile: "identity.key",
                                                             listen: .init(port: basePort + 20 + index))
            try configuration.save(directory + "/node.json")
            lines.append("node `\(nodeName)` (party `\(party.party)`): RPC at http://127.0.0.1:\(basePort + 10 + index), "
                         + "peer-to-peer at grpc://127.0.0.1:\(basePort + 20 + index), user admin, "
                         + "password in \(directory)/\(NodeCommand.passwordFile); run: hawser node run --config \(directory)/node.json")
            members.append(.init(name: nodeName, identityKey: identity.publicKey.base64,
                                 addresses: ["grpc://127.0.0.1:\(basePort + 20 + index)"],
                                 parties: [.init(name: party.party, publicKey: party.key.publicKey.base64)]))
        }
        let definition = NetworkDefinition(version: 1, nodes: members, notaries: [
            .init(name: Self.notaryName, publicKey: notaryKey.base64, addresses: notaryAddresses),
        ])
        try definition.json.write(to: URL(fileURLWithPath: definitionPath))
        lines.append("created \(definitionPath) (version 1): \(members.count) nodes, notary `\(Self.notaryName)` at "
                     + notaryAddresses.joined(separator: ", "))
        print(lines.joined(separator: "\n"))
    }

    /// The notary's configuration(s) under `root/notary`; returns its public key and addresses
    /// (the gRPC ones: one per process).
    private func makeNotary(root: String, authorised: [String], lines: inout [String]) throws -> (PublicKey, [String]) {
        let directory = root + "/notary"
        switch notary {
        case .single:
            _ = try NotaryCommand.initialise(directory: directory, name: Self.notaryName, port: basePort, parties: authorised,
                                             demoParty: false, acceptAnyParty: false, grpcPort: basePort + 1)
            lines.append("notary (one process): HTTP at http://127.0.0.1:\(basePort), gRPC at grpc://127.0.0.1:\(basePort + 1); "
                         + "run: hawser notary run --config \(directory)/hawser.json")
            return (try KeyFile.load(directory + "/notary.key").key.publicKey, ["grpc://127.0.0.1:\(basePort + 1)"])
        case .cluster:
            // Three replicas of one notary (one key) on a JetStream cluster whose servers listen on
            // BASE+100...BASE+102 (scripts/nats-cluster.sh start DIR/notary/nats BASE+100).
            let servers = (0..<3).map { "nats://127.0.0.1:\(basePort + 100 + $0)" }
            lines.append("the notary's JetStream cluster first: scripts/nats-cluster.sh start \(directory)/nats \(basePort + 100) "
                         + "in a source tree, or three nats-servers as docs/network.md shows")
            var key: SigningKey?
            for replica in 0..<3 {
                let replicaDirectory = directory + "/r\(replica)"
                _ = try NotaryCommand.initialise(directory: replicaDirectory, name: Self.notaryName, port: basePort + 2 * replica,
                                                 parties: authorised, demoParty: false, acceptAnyParty: false,
                                                 grpcPort: basePort + 2 * replica + 1)
                lines.append("notary replica r\(replica): HTTP at http://127.0.0.1:\(basePort + 2 * replica), gRPC at grpc://127.0.0.1:"
                             + "\(basePort + 2 * replica + 1); run: hawser notary run --config \(replicaDirectory)/hawser.json")
                // Every replica serves the one notary: the first one's key.
                if let key {
                    try FileManager.default.removeItem(atPath: replicaDirectory + "/notary.key")
                    try KeyFile(name: Self.notaryName, key: key).save(replicaDirectory + "/notary.key")
                } else {
                    key = try KeyFile.load(replicaDirectory + "/notary.key").key
                }
                var configuration = try NotaryConfiguration.load(replicaDirectory + "/hawser.json")
                configuration.log.kind = .jetstream
                configuration.log.servers = servers
                configuration.log.replicaId = "r\(replica)"
                configuration.log.members = ["r0", "r1", "r2"]
                try configuration.save(replicaDirectory + "/hawser.json")
            }
            return (try KeyFile.load(directory + "/r0/notary.key").key.publicKey,
                    (0..<3).map { "grpc://127.0.0.1:\(basePort + 2 * $0 + 1)" })
        }
    }
}
