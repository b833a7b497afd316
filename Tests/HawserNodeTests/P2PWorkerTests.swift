import Foundation
import HawserClient
@testable import HawserNode
import HawserTestSupport
import Testing

/// P2P workers (docs/node.md "Roles"): Bob's node is a flow worker that takes clients' requests
/// but not peers' (`ha.roles ["flow", "rpc"]`), and P2P workers (`["p2p"]`) that run no flow and
/// are the only addresses the network definition lists for Bob, on one SQLite node database with
/// a SQLite lease. Every message of Alice's reaches Bob through a P2P worker: it queues the
/// responders her payments ask for, and writes her answers to Bob's swaps to the inbox; the flow
/// worker runs the responders, and its swaps find the answers. Bob's payments to Alice leave from
/// a P2P worker too: the outbox is delivered by the process with the p2p role that leads the
/// outbox's election, never by a flow worker.
@Suite(.timeLimit(.minutes(5)), .serialized) struct P2PWorkerTests {
    /// One round: Alice→Bob payments of 1, Bob→Alice payments of 2, swaps Bob offers (he gives 25 for 10).
    static let (paysToBob, paysToAlice, swaps) = (6, 4, 2)

    /// One P2P worker. On a bus, with polls an hour apart, only the bus tells each worker what the
    /// other wrote; without one, their polls find it. The workers take their roles from their
    /// files (`ha.roles`), or, on the bus, from `hawser worker run --roles`.
    @Test(arguments: [false, true]) func aP2PWorkerTakesPeersMessagesForTheFlowWorker(onABus: Bool) async throws {
        let dir = try TemporaryDirectory()
        let nats = onABus ? try await NATSCluster.start(size: 1, jetStream: false) : nil
        defer { nats?.stop() }
        let bob = try Bob(p2pWorkers: ["p2p"])
        let network = try await bob.network(in: dir.path, bus: nats?.urls, rolesInFiles: !onABus)
        defer { network.stop() }
        for id in bob.ids {
            if onABus {
                try await network.startWorker("bob", roles: id == "flow" ? "flow,rpc" : "p2p", config: "\(id).json", as: "bob-\(id)")
            } else {
                try await network.startNode("bob", config: "\(id).json", as: "bob-\(id)")
            }
        }
        let (alice, bobs) = try await bob.ready(network, onABus: onABus)
        try await Self.round(0, network, alice, bobs)
        try await Self.expectLedgers(network, alice, bobs, rounds: 1)
        let worker = bob.rpc["p2p"]!
        #expect(try await PaymentNetworkHotHotTests.metric("hawser_flows_running_here", at: worker) == 0)
        #expect(try await PaymentNetworkHotHotTests.metric("hawser_outbox_delivering", at: worker) == 1)
        #expect(try await PaymentNetworkHotHotTests.metric("hawser_outbox_delivering", at: bob.rpc["flow"]!) == nil,
                "a flow worker does not stand for the outbox")
        // `hawser node status` lists both workers, the flow worker leading every partition, and the P2P worker the outbox.
        let (exit, printed) = try await HawserProcess.run(["node", "status", "--config", network.path + "/bob/flow.json"])
        let status = try #require(exit == 0 ? try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: Any] : nil, "\(printed)")
        let workers = (status["workers"] as? [[String: Any]] ?? []).map { ($0["id"] as? String ?? "", $0["leads"] as? [Int] ?? []) }
        #expect(workers.map(\.0) == ["flow", "p2p"] && workers.map(\.1) == [[0, 1, 2, 3], []], "\(printed)")
        let outbox = status["outbox"] as? [String: Any]
        #expect(outbox?["leader"] as? String == "p2p" && (outbox?["epoch"] as? Int ?? 0) > 0, "\(printed)")
        if nats != nil {
            let told = try await PaymentNetworkHotHotTests.metric(#"hawser_bus_events_total{direction="published"}"#, at: worker) ?? 0
            #expect(told > 0, "the P2P worker named what it queued and wrote on the bus")
        }
        for client in [alice, bobs] { try await client.shutdown() }
    }

    /// Two P2P workers: the one delivering Bob's outbox is killed -9 while payments run both ways,
    /// and a round runs after. The other takes Alice's messages (she tries the next address) and,
    /// once it wins the outbox's election, delivers Bob's: every payment and swap completes, once
    /// on each side.
    @Test func theOtherP2PWorkerDeliversAfterTheKillOfTheOneThatDid() async throws {
        let dir = try TemporaryDirectory()
        let bob = try Bob(p2pWorkers: ["p", "q"])
        let network = try await bob.network(in: dir.path, bus: nil, rolesInFiles: true)
        defer { network.stop() }
        for id in bob.ids { try await network.startNode("bob", config: "\(id).json", as: "bob-\(id)") }
        let (alice, bobs) = try await bob.ready(network, onABus: false)
        try await Self.round(0, network, alice, bobs)
        var delivering = [String]()
        try await eventually("one P2P worker delivers Bob's outbox") {
            delivering = []
            for id in ["p", "q"] where try await PaymentNetworkHotHotTests.metric("hawser_outbox_delivering", at: bob.rpc[id]!) == 1 {
                delivering.append(id)
            }
            return delivering.count == 1
        }
        let killed = delivering[0], survivor = killed == "p" ? "q" : "p"
        let before = try await network.balances("alice")[network.party("alice")] ?? 0
        let during = Task { try await Self.round(1, network, alice, bobs) }
        try await eventually("the second round is under way") { try await network.balances("alice")[network.party("alice")] ?? 0 != before }
        network.kill("bob-\(killed)")
        try await during.value
        // A round that starts after the kill: only the survivor can take and deliver its messages.
        try await Self.round(2, network, alice, bobs)
        try await Self.expectLedgers(network, alice, bobs, rounds: 3)
        try await eventually("the survivor delivers the outbox") {
            try await PaymentNetworkHotHotTests.metric("hawser_outbox_delivering", at: bob.rpc[survivor]!) == 1
        }
        for client in [alice, bobs] { try await client.shutdown() }
    }

    /// Bob's processes: the flow worker (`flow`) and the P2P workers named, each with its ports.
    struct Bob {
        let ids: [String]
        let rpc: [String: Int], p2p: [String: Int]

        init(p2pWorkers: [String]) throws {
            let ids = ["flow"] + p2pWorkers
            let ports = try FreePorts.take(2 * ids.count)
            self.ids = ids
            rpc = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, ports[$0]) })
            p2p = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, ports[ids.count + $0]) })
        }

        /// Alice's node running and Bob's files written (`<id>.json` each, on one data directory,
        /// with their roles if `rolesInFiles`); the network lists only the P2P workers for Bob.
        func network(in path: String, bus: [String]?, rolesInFiles: Bool) async throws -> PaymentNetwork {
            try await PaymentNetwork.start(in: path, starting: ["alice"]) { node, configuration in
                configuration.sessions.timeoutMillis = 3_600_000
                guard node == "bob" else { return }
                var (election, _) = HotWarmTests.sqliteElection(in: "")
                election.holdDownMs = 500
                PaymentNetworkHATests.bobPair(&configuration, mode: .hotHot, election: election, rpc: ["A": rpc["flow"]!])
                configuration.ha.partitions = 4
                if let bus {
                    configuration.ha.bus = BusSettings(servers: bus)
                    configuration.sessions.pollIntervalMillis = 3_600_000
                    configuration.ha.startQueuePollMillis = 60_000
                }
            } prepare: { net in
                try split(net, rolesInFiles: rolesInFiles)
            }
        }

        private func split(_ net: String, rolesInFiles: Bool) throws {
            let definition = net + "/network.json"
            var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: definition))) as! [String: Any]
            json["nodes"] = (json["nodes"] as! [[String: Any]]).map { entry in
                guard entry["name"] as? String == "O=Bob Node, L=London, C=GB" else { return entry }
                var entry = entry
                entry["addresses"] = ids.dropFirst().map { "grpc://127.0.0.1:\(p2p[$0]!)" }
                return entry
            }
            try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: definition))
            let base = try NodeConfiguration.load(net + "/bob/node.json")
            for id in ids {
                var configuration = base
                configuration.listen.port = rpc[id]!
                configuration.network?.listen.port = p2p[id]!
                configuration.ha.id = id
                configuration.ha.advertise = ["http://127.0.0.1:\(rpc[id]!)"]
                configuration.ha.roles = rolesInFiles ? (id == "flow" ? [.flow, .rpc] : [.p2p]) : nil
                try configuration.save(net + "/bob/\(id).json")
            }
        }

        /// Once every worker is ready (and on the bus): Alice's client and Bob's (at his flow
        /// worker), each party holding 8 states of 1,000.
        func ready(_ network: PaymentNetwork, onABus: Bool) async throws -> (alice: NodeClient, bob: NodeClient) {
            try await eventually("Bob's workers are ready", timeout: .seconds(60)) {
                try await PaymentNetworkHATests.ready(rpc).count == ids.count
            }
            if onABus {
                try await eventually("Bob's workers are on the bus") {
                    var on = 0
                    for port in rpc.values where try await PaymentNetworkHotHotTests.metric("hawser_bus_connected", at: port) == 1 { on += 1 }
                    return on == ids.count
                }
            }
            let alice = try network.client("alice")
            network.serve("bob", at: ["http://127.0.0.1:\(rpc["flow"]!)"])
            let bob = try network.client("bob")
            for i in 0..<8 {
                for (client, owner) in [(alice, network.party("alice")), (bob, network.party("bob"))] {
                    let issued = try await client.run("IssueTokens", arguments: Array(#"{"owner":"\#(owner)","amount":1000}"#.utf8),
                                                      clientRequestId: "seed-\(i)")
                    #expect(issued.status == "completed", "\(issued.error ?? "")")
                }
            }
            return (alice, bob)
        }
    }

    /// Round `r`'s payments and swaps, all at once; returns once each completed.
    static func round(_ r: Int, _ network: PaymentNetwork, _ alice: NodeClient, _ bob: NodeClient) async throws {
        let (a, b) = (network.party("alice"), network.party("bob"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            func run(_ client: NodeClient, _ flow: String, _ arguments: String, _ id: String) {
                group.addTask {
                    let done = try await client.run(flow, arguments: Array(arguments.utf8), clientRequestId: "\(id)-\(r)")
                    #expect(done.status == "completed", "\(id)-\(r): \(done.status): \(done.error ?? "")")
                }
            }
            for i in 0..<paysToBob { run(alice, "MoveTokens", #"{"owner":"\#(a)","newOwner":"\#(b)","amount":1}"#, "to-bob-\(i)") }
            for i in 0..<paysToAlice { run(bob, "MoveTokens", #"{"owner":"\#(b)","newOwner":"\#(a)","amount":2}"#, "to-alice-\(i)") }
            for i in 0..<swaps { run(bob, "SwapTokens", #"{"owner":"\#(b)","counterparty":"\#(a)","give":25,"want":10}"#, "swap-\(i)") }
            try await group.waitForAll()
        }
    }

    /// Both vaults hold every payment and swap of `rounds` rounds, and each was recorded once by
    /// its receiver: one responder each, Bob's run by his flow worker.
    static func expectLedgers(_ network: PaymentNetwork, _ alice: NodeClient, _ bob: NodeClient, rounds: Int) async throws {
        let (a, b) = (network.party("alice"), network.party("bob"))
        let aliceGains = Int64(rounds * (2 * paysToAlice - paysToBob + 15 * swaps))
        try await eventually("both vaults hold every payment and swap", timeout: .seconds(60)) {
            let (alices, bobs) = (try await network.balances("alice"), try await network.balances("bob"))
            return alices == [a: 8_000 + aliceGains] && bobs == [b: 8_000 - aliceGains]
        }
        for (client, flow, count) in [(bob, "ReceiveTokens", paysToBob), (alice, "ReceiveTokens", paysToAlice), (alice, "AcceptSwap", swaps)] {
            let responders = try await PaymentNetworkTests.allFlows(client, named: flow)
            #expect(responders.count == rounds * count && responders.allSatisfy { $0.status == "completed" }, "\(flow): \(responders.map(\.status))")
        }
    }
}
