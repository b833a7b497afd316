import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import Flows
import GRPCCore
import GRPCNIOTransportHTTP2
import HawserWire
import Membership
import P2P
import Sessions
import Testing

/// A node that is a member of a network (docs/network.md): it starts only with a definition that
/// names it as configured, serves the one in use, and takes a new version without a restart.
@Suite(.timeLimit(.minutes(10))) struct NodeNetworkTests {
    static let identity = SigningKey(seed: [UInt8](repeating: 30, count: 32))!
    static let bob = SigningKey(seed: [UInt8](repeating: 2, count: 32))!

    /// The network of this node (O=Hawser Node, hosting O=Alice and O=Bob) and one other node.
    static func definition(version: Int, identity: PublicKey = identity.publicKey, parties: [String: SigningKey]? = nil)
        -> NetworkDefinition {
        let hosted = (parties ?? ["O=Alice": alice, "O=Bob": bob]).sorted { $0.key < $1.key }
            .map { NetworkDefinition.Member(name: $0.key, publicKey: $0.value.publicKey.base64) }
        let other = SigningKey(seed: [UInt8](repeating: 31, count: 32))!, carol = SigningKey(seed: [UInt8](repeating: 32, count: 32))!
        return NetworkDefinition(version: version, nodes: [
            .init(name: NodeConfiguration().name, identityKey: identity.base64, addresses: ["grpc://127.0.0.1:10021"], parties: hosted),
            .init(name: "O=Carol Node", identityKey: other.publicKey.base64, addresses: ["grpc://127.0.0.1:10022"],
                  parties: [.init(name: "O=Carol", publicKey: carol.publicKey.base64)]),
        ], notaries: [.init(name: "O=Notary", publicKey: notaryKey.publicKey.base64, addresses: ["http://127.0.0.1:10000"])])
    }

    /// Writes a node directory (writeNodeFiles) with a `network` section and the definition file
    /// into `dir`; returns the configuration.
    static func memberNodeFiles(in dir: String, _ definition: NetworkDefinition = definition(version: 1)) throws -> NodeConfiguration {
        try writeNodeFiles(in: dir)
        try KeyFile(name: "O=Hawser Node", key: Self.identity).save(dir + "/identity.key")
        try definition.json.write(to: URL(fileURLWithPath: dir + "/network.json"))
        var configuration = try NodeConfiguration.load(dir + "/node.json")
        configuration.network = NodeNetworkConfiguration(file: "network.json", identityKeyFile: "identity.key")
        configuration.network?.reloadIntervalMillis = 100
        try configuration.save(dir + "/node.json")
        return try NodeConfiguration.load(dir + "/node.json")
    }

    func served(_ client: any TestClientProtocol) async throws -> (HTTPResponse.Status, NetworkDefinition?) {
        try await client.execute(uri: "/v1/network", method: .get, headers: viewer) { response in
            (response.status, try? JSONDecoder().decode(NetworkDefinition.self, from: Data(buffer: response.body)))
        }
    }

    /// The parties the served OpenAPI document lets `MoveTokens` pay.
    func payees(_ client: any TestClientProtocol) async throws -> [String]? {
        try await client.execute(uri: "/openapi.json", method: .get) { response in
            let document = try JSONValue(parsing: Array(buffer: response.body))
            let newOwner = document.object?["components"]?.object?["schemas"]?.object?["MoveTokensArguments"]?
                .object?["properties"]?.object?["newOwner"]?.object
            guard case .array(let names)? = newOwner?["enum"] else { return nil }
            return names.compactMap { if case .string(let name) = $0 { name } else { nil } }
        }
    }

    @Test(.timeLimit(.minutes(2))) func theNodeServesItsNetworkAndTakesANewVersionWithoutARestart() async throws {
        let dir = try TemporaryDirectory(), path = dir.path
        let configuration = try Self.memberNodeFiles(in: path, Self.definition(version: 1))
        let (app, _) = try await Node.application(configuration: configuration, baseDirectory: path, logger: quietLogger)
        try await app.test(.live) { client in
            #expect(try await served(client) == (.ok, Self.definition(version: 1)))
            // A flow may name the network's parties, not only the node's (it named only those).
            #expect(try await payees(client) == ["O=Alice", "O=Bob", "O=Carol"])
            var next = Self.definition(version: 2)
            next.nodes[1].addresses = ["grpc://127.0.0.1:10023"]
            next.nodes[1].parties.append(.init(name: "O=Dan", publicKey: SigningKey(seed: [UInt8](repeating: 33, count: 32))!.publicKey.base64))
            try next.json.write(to: URL(fileURLWithPath: path + "/network.json"))
            try await eventually("the node takes version 2") { try await served(client).1?.version == 2 }
            #expect(try await served(client).1 == next)
            #expect(try await payees(client) == ["O=Alice", "O=Bob", "O=Carol", "O=Dan"])
        }
    }

    /// A newer version that gives one of this node's parties another key is not taken, and while
    /// the file offers it the node starts no flow and is not ready: the other nodes may take it,
    /// and would refuse what this node signs with the old key after the notary spent its inputs
    /// (found from outside: a payment's tokens in no vault). The file back at the version in use
    /// ends it.
    @Test(.timeLimit(.minutes(2))) func theNodeStartsNoFlowWhileANewerDefinitionDoesNotFitIt() async throws {
        let dir = try TemporaryDirectory(), path = dir.path
        let configuration = try Self.memberNodeFiles(in: path, Self.definition(version: 1))
        let (app, parts) = try await Node.application(configuration: configuration, baseDirectory: path, logger: quietLogger)
        try await app.test(.live) { client in
            @Sendable func start() async throws -> (HTTPResponse.Status, String) {
                try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                         body: startBody("IssueTokens", #"{"owner":"O=Alice","amount":1}"#)) { ($0.status, String(buffer: $0.body)) }
            }
            @Sendable func ready() async throws -> HTTPResponse.Status { try await client.execute(uri: "/health/ready", method: .get) { $0.status } }
            try await eventually("the node is ready") { try await ready() == .ok }
            let stranger = SigningKey(seed: [UInt8](repeating: 33, count: 32))!
            try Self.definition(version: 2, parties: ["O=Alice": alice, "O=Bob": stranger]).json.write(to: URL(fileURLWithPath: path + "/network.json"))
            try await eventually("the node is not ready") { try await ready() == .serviceUnavailable }
            let (status, body) = try await start()
            #expect(status == .serviceUnavailable && body.contains(#""code":"not_ready""#)
                    && body.contains("version 2 of the network definition does not fit this node"), "\(body)")
            #expect(try await parts.database.flows.counts().isEmpty, "nothing started")
            #expect(try await served(client).1?.version == 1)
            try Self.definition(version: 1).json.write(to: URL(fileURLWithPath: path + "/network.json"))
            try await eventually("the node is ready again") { try await ready() == .ok }
            #expect(try await start().0 == .created)
        }
    }

    /// Carol's node, the other member of `definition`.
    static let carolNode = SigningKey(seed: [UInt8](repeating: 31, count: 32))!

    @Test(.timeLimit(.minutes(2))) func aMemberNodeServesPeerDeliveryAndRefusesForgeries() async throws {
        let dir = try TemporaryDirectory(), path = dir.path
        var configuration = try Self.memberNodeFiles(in: path)
        let port = try FreePorts.take(1)[0]
        configuration.network?.listen.port = port
        let (app, _) = try await Node.application(configuration: configuration, baseDirectory: path, logger: quietLogger)
        let initiate = SessionMessage(session: "carol-flow/0", sender: "O=Carol", recipient: "O=Alice", sequence: 1, kind: .initiate,
                                      initiator: .init(flowName: "NoSuchFlow", version: 1)).encoded()
        @Sendable func deliver(signedBy key: SigningKey) async throws -> Hawser_P2p_V1_DeliveryReply {
            let delivery = DeliverySigning.sign([initiate], from: "O=Carol Node", to: NodeConfiguration().name, at: SystemFlowClock().now(),
                                                with: key)
            return try await withGRPCClient(transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port),
                                                                           transportSecurity: .plaintext)) {
                try await Hawser_P2p_V1_Peer.Client(wrapping: $0).deliver(delivery)
            }
        }
        try await app.test(.live) { _ in
            var answered: Hawser_P2p_V1_DeliveryReply?
            try await eventually("the peer-to-peer listener answers") {
                answered = try? await deliver(signedBy: Self.carolNode)
                return answered != nil
            }
            // Carol's node is a member and signed it; the node has no responder for that flow.
            let answer = try #require(answered?.answers.first)
            #expect(answered?.answers.count == 1 && !answer.accepted && answer.code == "no_responder", "\(String(describing: answered))")
            // The same delivery signed by a key that is not Carol's node's is refused whole.
            let forged = try await deliver(signedBy: SigningKey())
            #expect(forged.hasRefused && forged.refused.code == "bad_signature" && forged.answers.isEmpty)
        }
    }

    @Test func aNodeNotNamedAsConfiguredDoesNotStart() async throws {
        let stranger = SigningKey(seed: [UInt8](repeating: 33, count: 32))!
        for (definition, problem) in [
            (Self.definition(version: 1, identity: stranger.publicKey), "network.identityKeyFile: its public key"),
            (Self.definition(version: 1, parties: ["O=Alice": alice]), "parties: `O=Bob` is not a party of `O=Hawser Node, L=London, C=GB`"),
            (Self.definition(version: 1, parties: ["O=Alice": alice, "O=Bob": stranger]), "parties: the key of `O=Bob` is not the one"),
            (Self.definition(version: 1, parties: ["O=Alice": alice, "O=Bob": Self.bob, "O=Dave": stranger]),
             "parties: the network definition gives `O=Hawser Node, L=London, C=GB` the party `O=Dave`, which this node does not host"),
        ] {
            let dir = try TemporaryDirectory(), path = dir.path
            let configuration = try Self.memberNodeFiles(in: path, definition)
            let error = await #expect(throws: ConfigurationError.self) {
                _ = try await Node.application(configuration: configuration, baseDirectory: path, logger: quietLogger)
            }
            #expect(error?.problems.contains { $0.hasPrefix(problem) } == true, "\(error?.problems ?? [])")
        }
        // Neither does a node the definition does not name, nor one whose definition is unusable.
        var renamed = Self.definition(version: 1)
        renamed.nodes[0].name = "O=Someone Else"
        let dir = try TemporaryDirectory(), path = dir.path
        let configuration = try Self.memberNodeFiles(in: path, renamed)
        await #expect(throws: ConfigurationError.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: path, logger: quietLogger)
        }
        try Data("[]".utf8).write(to: URL(fileURLWithPath: path + "/network.json"))
        await #expect(throws: ConfigurationError.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: path, logger: quietLogger)
        }
    }

    @Test func aNodeOnItsOwnHasNoNetwork() async throws {
        try await withNode { client, _ in
            try await client.execute(uri: "/v1/network", method: .get, headers: viewer) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("\"not_found\""))
            }
        }
    }

    /// The `sessions` options come from the file; those left out keep `SessionConfiguration`'s defaults.
    @Test func theSessionsSectionIsReadFromTheFile() throws {
        let json = #"{"sessions": {"inboxPruneIntervalMillis": 250, "batchSize": 7}}"#
        let settings = try JSONDecoder().decode(NodeConfiguration.self, from: Data(json.utf8)).sessions.settings
        #expect(settings.inboxPruneInterval == .milliseconds(250))
        #expect(settings.batchSize == 7)
        #expect(settings.timeout == SessionConfiguration().timeout)
    }

    @Test func theNetworkSectionIsValidated() throws {
        var configuration = NodeConfiguration()
        configuration.network = NodeNetworkConfiguration(file: "", identityKeyFile: "")
        configuration.network?.reloadIntervalMillis = 5
        configuration.network?.listen = .init(host: "localhost", port: configuration.listen.port)
        configuration.network?.maxClockSkewMillis = 10
        configuration.sessions.batchSize = 0
        configuration.sessions.inboxPruneIntervalMillis = 0
        configuration.sessions.retryMaxDelayMillis = 1
        let problems = configuration.problems
        #expect(problems.contains("network.listen.host must be an IP address, such as 127.0.0.1, 0.0.0.0 or ::1 (not `localhost`)"))
        #expect(problems.contains("network.listen.port must differ from listen.port (\(configuration.listen.port))"))
        #expect(problems.contains("network.maxClockSkewMillis must be 1000...86400000"))
        #expect(problems.contains("sessions.batchSize must be from 1 to 10000"))
        #expect(problems.contains("sessions.inboxPruneIntervalMillis must be 100...86400000 (a day)"))
        #expect(problems.contains("sessions.retryMaxDelayMillis must be sessions.retryInitialDelayMillis...86400000 (a day)"))
        #expect(problems.contains("network.file must not be empty"))
        #expect(problems.contains("network.identityKeyFile must not be empty"))
        #expect(problems.contains("network.reloadIntervalMillis must be 100...3600000"))
    }
}

/// `hawser network init` and `hawser network check` (docs/network.md).
@Suite(.timeLimit(.minutes(3)))
struct NetworkCommandTests {
    /// The network `init` makes is one every node of it starts in, with the notary's addresses.
    @Test(arguments: ["single", "cluster"]) func initMakesANetworkEveryNodeStartsIn(notary: String) async throws {
        let dir = try TemporaryDirectory(), path = dir.path
        let made = try await ChildProcess.run(HawserProcess.binary, ["network", "init", "net", "--nodes", "Alice,Bob", "--notary", notary,
                                                                     "--base-port", "21000"], in: path, scratch: path)
        #expect(made.status == 0, "\(made.output)")
        let definition = try NetworkDefinition.load(Data(contentsOf: URL(fileURLWithPath: path + "/net/network.json")))
        #expect(definition.nodes.map(\.name) == ["O=Alice Node, L=London, C=GB", "O=Bob Node, L=London, C=GB"])
        #expect(definition.notaries[0].addresses == (notary == "single" ? ["grpc://127.0.0.1:21001"]
                                                     : ["grpc://127.0.0.1:21001", "grpc://127.0.0.1:21003", "grpc://127.0.0.1:21005"]))
        let replicas = notary == "single" ? ["notary"] : ["notary/r0", "notary/r1", "notary/r2"]
        for replica in replicas {
            let configuration = try NotaryConfiguration.load(path + "/net/\(replica)/hawser.json")
            #expect(Set(configuration.authorisedParties.map(\.name)) == ["O=Alice, L=London, C=GB", "O=Bob, L=London, C=GB"])
            #expect(try KeyFile.load(path + "/net/\(replica)/notary.key").key.publicKey.base64 == definition.notaries[0].publicKey)
        }
        for (index, node) in ["alice", "bob"].enumerated() {
            var configuration = try NodeConfiguration.load(path + "/net/\(node)/node.json")
            // Its peer-to-peer service listens where the definition says the node is reached.
            #expect(configuration.network?.listen.port == 21_020 + index)
            #expect(definition.nodes[index].addresses == ["grpc://127.0.0.1:\(21_020 + index)"])
            configuration.listen.port = 0
            configuration.network?.listen.port = 0  // the two cases of this test run side by side
            // Starts only if the definition names it as configured; serves the definition.
            let (app, _) = try await Node.application(configuration: configuration, baseDirectory: path + "/net/\(node)", logger: quietLogger)
            try await app.test(.router) { client in
                let password = try String(contentsOfFile: path + "/net/\(node)/rpc-password", encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                try await client.execute(uri: "/v1/network", method: .get,
                                         headers: [.authorization: RPCAuthenticator.basic(username: "admin", password: password)]) { response throws in
                    #expect(response.status == .ok)
                    #expect(try JSONDecoder().decode(NetworkDefinition.self, from: Data(buffer: response.body)) == definition)
                }
            }
        }
        let again = try await ChildProcess.run(HawserProcess.binary, ["network", "init", "net"], in: path, scratch: path)
        #expect(again.status != 0 && again.output.contains("already exists"), "\(again.output)")
    }

    /// Names are checked one by one: an empty one (`Alice,,Bob`) was dropped silently before.
    @Test func initRefusesEmptyRepeatedOrTooManyNodeNames() async throws {
        let cases = [("Alice,,Bob", "`` is not a short name of letters and digits"), ("Alice,alice", "--nodes names a node twice"),
                     ((1...11).map { "N\($0)" }.joined(separator: ","), "--nodes: at most 10 nodes")]
        for (nodes, says) in cases {
            let (status, output) = try await HawserProcess.run(["network", "init", "/tmp/unused-network-\(UUID().uuidString)", "--nodes", nodes])
            #expect(status != 0 && output.contains(says), "\(nodes): \(output)")
        }
    }

    @Test func aUsableDefinitionPassesAndABrokenOneListsItsProblems() async throws {
        let dir = try TemporaryDirectory()
        try NodeNetworkTests.definition(version: 3).json.write(to: URL(fileURLWithPath: dir.path + "/good.json"))
        var broken = NodeNetworkTests.definition(version: 3)
        broken.notaries = []
        broken.nodes[1].addresses = ["carol:10022"]
        try broken.json.write(to: URL(fileURLWithPath: dir.path + "/bad.json"))
        let good = try await ChildProcess.run(HawserProcess.binary, ["network", "check", "good.json"], in: dir.path, scratch: dir.path)
        #expect(good.status == 0 && good.output.contains("version 3: 2 nodes, 3 parties, 1 notaries"), "\(good.output)")
        let bad = try await ChildProcess.run(HawserProcess.binary, ["network", "check", "bad.json"], in: dir.path, scratch: dir.path)
        #expect(bad.status == 1)
        #expect(bad.output.contains("notaries: a network needs at least one notary"), "\(bad.output)")
        #expect(bad.output.contains("node `O=Carol Node`: `carol:10022` is not an address"), "\(bad.output)")
    }
}
