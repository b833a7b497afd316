import AsyncHTTPClient
import Foundation
import HawserClient
import HawserNode
import HawserTestSupport
import Testing

/// A network member that is a hot-warm pair (docs/p2p.md: "a node with several advertised
/// addresses is reached at whichever is active"): Bob's node is two processes on one PostgreSQL
/// database, elected through a PostgreSQL lease, listed in the network definition with both
/// peer-to-peer addresses. The standby answers deliveries UNAVAILABLE, so Alice's node tries the
/// next address.
@Suite(.timeLimit(.minutes(10)), .serialized) struct PaymentNetworkHATests {
    @Test func paymentsReachAHotWarmPairAcrossTheFailoverOfItsActive() async throws {
        let dir = try TemporaryDirectory()
        let postgres = try await PostgresServer.start(durableCommits: true)
        defer { postgres.stop() }
        try await postgres.sql("CREATE DATABASE bob")
        let ports = try FreePorts.take(4)
        let (rpc, p2p) = (["A": ports[0], "B": ports[1]], ["A": ports[2], "B": ports[3]])
        let url = postgres.url(database: "bob")
        let network = try await PaymentNetwork.start(in: dir.path, starting: ["alice"]) { node, configuration in
            // A payment that cannot reach Bob's pair fails in well under the test's time.
            guard node == "bob" else { return configuration.sessions.timeoutMillis = 45_000 }
            configuration.database.kind = .postgres
            configuration.database.url = url
            var election = ElectionSettings()
            election.postgres = url
            Self.bobPair(&configuration, mode: .hotWarm, election: election, rpc: rpc)
        } prepare: { net in
            try Self.listBoth(of: "O=Bob Node, L=London, C=GB", at: p2p, rpc: rpc, in: net)
        }
        defer { network.stop() }
        network.serve("bob", at: ["A", "B"].map { "http://127.0.0.1:\(rpc[$0]!)" })
        for id in ["A", "B"] { try await network.startNode("bob", config: "\(id).json", as: "bob-\(id)") }
        let (a, b) = (network.party("alice"), network.party("bob"))
        let alice = try network.client("alice")
        // One state for each payment that may be in flight at once (a payment reserves a whole state).
        for i in 0..<16 {
            let issued = try await alice.run("IssueTokens", arguments: Array(#"{"owner":"\#(a)","amount":1000}"#.utf8), clientRequestId: "seed-\(i)")
            #expect(issued.status == "completed")
        }
        @Sendable func pay(_ ids: Range<Int>) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in ids {
                    group.addTask {
                        let paid = try await alice.run("MoveTokens", arguments: Array(#"{"owner":"\#(a)","newOwner":"\#(b)","amount":1}"#.utf8),
                                                       clientRequestId: "pay-\(i)")
                        #expect(paid.status == "completed", "\(paid.status): \(paid.error ?? "")")
                    }
                }
                try await group.waitForAll()
            }
        }
        let first = try await Self.active(rpc)
        try await pay(0..<8)
        // Payments in flight while Bob's active process is killed: the standby takes over, Alice's
        // node finds it at the other address, and every payment completes once.
        let during = Task { try await pay(8..<24) }
        try await eventually("payments of the second round reach Bob") { try await network.balances("bob")[b] ?? 0 > 8 }
        network.kill("bob-\(first)")
        try await during.value
        let second = try await Self.active(rpc)
        #expect(second != first)
        try await pay(24..<32)
        try await eventually("Bob's pair recorded every payment", timeout: .seconds(120)) {
            try await network.balances("bob")[b] == 32
        }
        #expect(try await network.balances("alice")[a] == 16_000 - 32)
        let bob = try network.client("bob")
        let received = try await PaymentNetworkTests.allFlows(bob, named: "ReceiveTokens")
        #expect(received.count == 32 && received.allSatisfy { $0.status == "completed" }, "one responder per payment")
        try await alice.shutdown()
        try await bob.shutdown()
    }

    /// Makes `configuration` Bob's pair in `mode`, standing in the election `bob` of `election`
    /// (its back end and timing), as process A; `listBoth` writes each process's own.
    static func bobPair(_ configuration: inout NodeConfiguration, mode: HAConfiguration.Mode, election: ElectionSettings, rpc: [String: Int]) {
        var election = election
        election.election = "bob"
        configuration.ha.mode = mode
        configuration.ha.election = election
        configuration.ha.id = "A"
        configuration.ha.advertise = ["http://127.0.0.1:\(rpc["A"]!)"]
    }

    /// Lists both processes' peer-to-peer addresses for `node` in the network definition, and
    /// writes each process's configuration (`A.json`, `B.json`: its own ports, and its own data
    /// directory unless `sharingData`, for processes on one SQLite database) from the node's `node.json`.
    static func listBoth(of node: String, at p2p: [String: Int], rpc: [String: Int], in net: String, sharingData: Bool = false) throws {
        let definition = net + "/network.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: definition))) as! [String: Any]
        json["nodes"] = (json["nodes"] as! [[String: Any]]).map { entry in
            guard entry["name"] as? String == node else { return entry }
            var entry = entry
            entry["addresses"] = ["A", "B"].map { "grpc://127.0.0.1:\(p2p[$0]!)" }
            return entry
        }
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: definition))
        let base = try NodeConfiguration.load(net + "/bob/node.json")
        for id in ["A", "B"] {
            var configuration = base
            configuration.listen.port = rpc[id]!
            configuration.network?.listen.port = p2p[id]!
            if !sharingData { configuration.dataDirectory = "data-\(id)" }
            configuration.ha.id = id
            configuration.ha.advertise = ["http://127.0.0.1:\(rpc[id]!)"]
            try configuration.save(net + "/bob/\(id).json")
        }
    }

    /// The processes that answer ready now.
    static func ready(_ rpc: [String: Int]) async throws -> [String] {
        var found = [String]()
        for (id, port) in rpc.sorted(by: { $0.key < $1.key }) {
            let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/health/ready"), timeout: .seconds(2))
            if response?.status == .ok { found.append(id) }
        }
        return found
    }

    /// The process of the pair that answers ready, once one does.
    static func active(_ rpc: [String: Int]) async throws -> String {
        var found: String?
        try await eventually("one of Bob's processes is active", timeout: .seconds(60)) {
            found = try await ready(rpc).first
            return found != nil
        }
        return found!
    }
}
