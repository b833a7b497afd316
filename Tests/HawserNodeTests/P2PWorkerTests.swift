import Foundation
import HawserClient
@testable import HawserNode
import HawserTestSupport
import Testing

/// A P2P worker (docs/node.md "Roles"): Bob's node is a flow worker that takes clients' requests
/// but not peers' (`ha.roles ["flow", "rpc"]`), and a P2P worker (`["p2p"]`) that runs no flow
/// and is the only address the network definition lists for Bob, on one SQLite node database
/// with a SQLite lease. Every message of Alice's reaches Bob through the P2P worker: it queues the
/// responders her payments ask for, and writes her answers to Bob's swaps to the inbox; the flow
/// worker runs the responders, and its swaps find the answers. Bob's payments to Alice leave from
/// the P2P worker too: the outbox is delivered by the process with the p2p role that leads the
/// outbox's election, never by a flow worker. On a bus, with polls an hour apart, only the bus
/// tells each worker what the other wrote; without one, their polls find it. The workers take their
/// roles from their files (`ha.roles`), or, on the bus, from `hawser worker run --roles`.
@Suite(.timeLimit(.minutes(5)), .serialized) struct P2PWorkerTests {
    static let (paysToBob, paysToAlice, swaps) = (6, 4, 2)

    @Test(arguments: [false, true]) func aP2PWorkerTakesPeersMessagesForTheFlowWorker(onABus: Bool) async throws {
        let dir = try TemporaryDirectory()
        let nats = onABus ? try await NATSCluster.start(size: 1, jetStream: false) : nil
        defer { nats?.stop() }
        let ports = try FreePorts.take(3)
        let (flowRPC, workerRPC, workerP2P) = (ports[0], ports[1], ports[2])
        let network = try await PaymentNetwork.start(in: dir.path, starting: ["alice"]) { node, configuration in
            configuration.sessions.timeoutMillis = 3_600_000
            guard node == "bob" else { return }
            var (election, _) = HotWarmTests.sqliteElection(in: "")
            election.holdDownMs = 500
            PaymentNetworkHATests.bobPair(&configuration, mode: .hotHot, election: election, rpc: ["A": flowRPC])
            configuration.ha.partitions = 4
            if let nats {
                configuration.ha.bus = BusSettings(servers: nats.urls)
                configuration.sessions.pollIntervalMillis = 3_600_000
                configuration.ha.startQueuePollMillis = 60_000
            }
        } prepare: { net in
            try Self.split(bob: net, flowRPC: flowRPC, workerRPC: workerRPC, workerP2P: workerP2P, rolesInFiles: !onABus)
        }
        defer { network.stop() }
        for (id, roles) in [("flow", "flow,rpc"), ("p2p", "p2p")] {
            if onABus {
                try await network.startWorker("bob", roles: roles, config: "\(id).json", as: "bob-\(id)")
            } else {
                try await network.startNode("bob", config: "\(id).json", as: "bob-\(id)")
            }
        }
        try await eventually("both of Bob's workers are ready", timeout: .seconds(60)) {
            try await PaymentNetworkHATests.ready(["flow": flowRPC, "p2p": workerRPC]).count == 2
        }
        if nats != nil {
            try await eventually("both of Bob's workers are on the bus") {
                var on = 0
                for port in [flowRPC, workerRPC] where try await PaymentNetworkHotHotTests.metric("hawser_bus_connected", at: port) == 1 { on += 1 }
                return on == 2
            }
        }
        let (a, b) = (network.party("alice"), network.party("bob"))
        let alice = try network.client("alice")
        network.serve("bob", at: ["http://127.0.0.1:\(flowRPC)"])
        let bob = try network.client("bob")
        for i in 0..<8 {
            for (client, owner) in [(alice, a), (bob, b)] {
                let issued = try await client.run("IssueTokens", arguments: Array(#"{"owner":"\#(owner)","amount":1000}"#.utf8),
                                                  clientRequestId: "seed-\(i)")
                #expect(issued.status == "completed", "\(issued.error ?? "")")
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            func run(_ client: NodeClient, _ flow: String, _ arguments: String, _ id: String) {
                group.addTask {
                    let done = try await client.run(flow, arguments: Array(arguments.utf8), clientRequestId: id)
                    #expect(done.status == "completed", "\(id): \(done.status): \(done.error ?? "")")
                }
            }
            for i in 0..<Self.paysToBob { run(alice, "MoveTokens", #"{"owner":"\#(a)","newOwner":"\#(b)","amount":1}"#, "to-bob-\(i)") }
            for i in 0..<Self.paysToAlice { run(bob, "MoveTokens", #"{"owner":"\#(b)","newOwner":"\#(a)","amount":2}"#, "to-alice-\(i)") }
            for i in 0..<Self.swaps { run(bob, "SwapTokens", #"{"owner":"\#(b)","counterparty":"\#(a)","give":10,"want":25}"#, "swap-\(i)") }
            try await group.waitForAll()
        }
        let aliceGains = Int64(2 * Self.paysToAlice - Self.paysToBob - 15 * Self.swaps)
        try await eventually("both vaults hold every payment and swap", timeout: .seconds(60)) {
            let (alices, bobs) = (try await network.balances("alice"), try await network.balances("bob"))
            return alices == [a: 8_000 + aliceGains] && bobs == [b: 8_000 - aliceGains]
        }
        // Each payment and swap recorded once by its receiver: one responder each, Bob's run by his flow worker.
        for (client, flow, count) in [(bob, "ReceiveTokens", Self.paysToBob), (alice, "ReceiveTokens", Self.paysToAlice),
                                      (alice, "AcceptSwap", Self.swaps)] {
            let responders = try await PaymentNetworkTests.allFlows(client, named: flow)
            #expect(responders.count == count && responders.allSatisfy { $0.status == "completed" }, "\(flow): \(responders.map(\.status))")
        }
        #expect(try await PaymentNetworkHotHotTests.metric("hawser_flows_running_here", at: workerRPC) == 0)
        #expect(try await PaymentNetworkHotHotTests.metric("hawser_outbox_delivering", at: workerRPC) == 1)
        #expect(try await PaymentNetworkHotHotTests.metric("hawser_outbox_delivering", at: flowRPC) == nil, "a flow worker does not stand for the outbox")
        // `hawser node status` lists both workers, the flow worker leading every partition, and the P2P worker the outbox.
        let (exit, printed) = try await HawserProcess.run(["node", "status", "--config", network.path + "/bob/flow.json"])
        let status = try #require(exit == 0 ? try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: Any] : nil, "\(printed)")
        let workers = (status["workers"] as? [[String: Any]] ?? []).map { ($0["id"] as? String ?? "", $0["leads"] as? [Int] ?? []) }
        #expect(workers.map(\.0) == ["flow", "p2p"] && workers.map(\.1) == [[0, 1, 2, 3], []], "\(printed)")
        let outbox = status["outbox"] as? [String: Any]
        #expect(outbox?["leader"] as? String == "p2p" && (outbox?["epoch"] as? Int ?? 0) > 0, "\(printed)")
        if nats != nil {
            let told = try await PaymentNetworkHotHotTests.metric(#"hawser_bus_events_total{direction="published"}"#, at: workerRPC) ?? 0
            #expect(told > 0, "the P2P worker named what it queued and wrote on the bus")
        }
        for client in [alice, bob] { try await client.shutdown() }
    }

    /// Writes Bob's two processes' files from his `node.json`: `flow.json` (roles flow and rpc,
    /// not listening to peers) and `p2p.json` (role p2p), on one data directory, with their roles
    /// (`ha.roles`) if `rolesInFiles`; lists only the P2P worker's address for Bob in the network definition.
    static func split(bob net: String, flowRPC: Int, workerRPC: Int, workerP2P: Int, rolesInFiles: Bool) throws {
        let definition = net + "/network.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: definition))) as! [String: Any]
        json["nodes"] = (json["nodes"] as! [[String: Any]]).map { entry in
            guard entry["name"] as? String == "O=Bob Node, L=London, C=GB" else { return entry }
            var entry = entry
            entry["addresses"] = ["grpc://127.0.0.1:\(workerP2P)"]
            return entry
        }
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: definition))
        let base = try NodeConfiguration.load(net + "/bob/node.json")
        for (id, rpc, roles) in [("flow", flowRPC, Set<HAConfiguration.Role>([.flow, .rpc])), ("p2p", workerRPC, [.p2p])] {
            var configuration = base
            configuration.listen.port = rpc
            configuration.network?.listen.port = workerP2P
            configuration.ha.id = id
            configuration.ha.advertise = ["http://127.0.0.1:\(rpc)"]
            configuration.ha.roles = rolesInFiles ? roles : nil
            try configuration.save(net + "/bob/\(id).json")
        }
    }
}
