import AsyncHTTPClient
import Foundation
import HawserClient
import HawserNode
import HawserWire
import JetStream
import HawserTestSupport
import Testing

/// A network member that is a hot-hot node (docs/node.md, "Hot-hot"; docs/p2p.md): Bob's node is
/// two processes on one PostgreSQL database, each serving its share of 4 partitions, both listed
/// in the network definition. Either process takes peers' messages into the shared inbox (a
/// responder starts in a partition it serves); the one that leads the outbox's election delivers
/// the whole node's outbox; a flow waiting for a message the other process took finds it in the inbox.
/// Alice pays Bob, Bob pays Alice and Bob's swaps wait on Alice's answers, from flows on both
/// processes, also while the process that delivers the outbox is killed -9. Bob's processes hear
/// of each other's writes by polling the database, or on a NATS bus (`ha.bus`): with the bus and a
/// poll of an hour, only the bus can tell them; with the bus and the usual poll, the NATS server
/// is killed and started again in the middle, and a newer process's events (schema 2) are on the
/// bus throughout: each process refuses them, says so once, and the polls cover what was lost.
@Suite(.timeLimit(.minutes(10)), .serialized) struct PaymentNetworkHotHotTests {
    /// Every round: Alice→Bob payments of 1, Bob→Alice payments of 2, swaps Bob offers (he gives 25 for 10).
    static let (paysToBob, paysToAlice, swaps) = (8, 8, 4)

    enum News: String, CaseIterable, Sendable { case polls, bus, busRestarted }

    @Test(arguments: News.allCases)
    func paymentsAndSwapsWithAHotHotNodeAcrossTheKillOfItsOutboxsProcess(_ news: News) async throws {
        let dir = try TemporaryDirectory()
        let postgres = try await PostgresServer.start(durableCommits: true)
        defer { postgres.stop() }
        let nats = news == .polls ? nil : try await NATSCluster.start(size: 1, jetStream: false)
        defer { nats?.stop() }
        try await postgres.sql("CREATE DATABASE bob")
        let ports = try FreePorts.take(4)
        let (rpc, p2p) = (["A": ports[0], "B": ports[1]], ["A": ports[2], "B": ports[3]])
        let url = postgres.url(database: "bob")
        let network = try await PaymentNetwork.start(in: dir.path, starting: ["alice"]) { node, configuration in
            guard node == "bob" else { return configuration.sessions.timeoutMillis = 60_000 }
            configuration.database.kind = .postgres
            configuration.database.url = url
            var election = ElectionSettings()
            election.postgres = url
            election.holdDownMs = 500
            PaymentNetworkHATests.bobPair(&configuration, mode: .hotHot, election: election, rpc: rpc)
            configuration.ha.partitions = 4
            // Longer than the test may run: a flow that never hears of a message the other process
            // took would wait for it until the test's time limit (a message is looked for once more
            // when the wait ends).
            configuration.sessions.timeoutMillis = 3_600_000
            if let nats {
                configuration.ha.bus = BusSettings(servers: nats.urls)
                if news == .bus { configuration.sessions.pollIntervalMillis = 3_600_000 }
            }
        } prepare: { net in
            try PaymentNetworkHATests.listBoth(of: "O=Bob Node, L=London, C=GB", at: p2p, rpc: rpc, in: net)
        }
        defer { network.stop() }
        let log = { (id: String) in dir.path + "/bob-\(id).log" }
        for id in ["A", "B"] { try await network.startNode("bob", config: "\(id).json", as: "bob-\(id)", log: log(id)) }
        let newer = news == .busRestarted ? Task { try await Self.publishNewerEvents(on: nats!.urls) } : nil
        defer { newer?.cancel() }
        // Both serve once the balancer has given each its share.
        try await eventually("both of Bob's processes serve", timeout: .seconds(60)) {
            try await PaymentNetworkHATests.ready(rpc).count == 2
        }
        // An event published before a process subscribes is lost (and found by its polls): with
        // an hour's poll, the payments wait until both are on the bus.
        if nats != nil {
            try await eventually("both of Bob's processes are on the bus") {
                var on = 0
                for id in ["A", "B"] where try await Self.metric("hawser_bus_connected", at: rpc[id]!) == 1 { on += 1 }
                return on == 2
            }
        }
        let (a, b) = (network.party("alice"), network.party("bob"))
        let alice = try network.client("alice")
        // Bob's flows run on both processes: each client starts them at one first.
        network.serve("bob", at: ["A", "B"].map { "http://127.0.0.1:\(rpc[$0]!)" })
        let bobA = try network.client("bob")
        network.serve("bob", at: ["B", "A"].map { "http://127.0.0.1:\(rpc[$0]!)" })
        let bobB = try network.client("bob")
        // One state for each flow that may hold one at once (a flow reserves whole states).
        for i in 0..<16 {
            for (client, owner) in [(alice, a), (i % 2 == 0 ? bobA : bobB, b)] {
                let issued = try await client.run("IssueTokens", arguments: Array(#"{"owner":"\#(owner)","amount":1000}"#.utf8),
                                                  clientRequestId: "seed-\(i)")
                #expect(issued.status == "completed", "\(issued.error ?? "")")
            }
        }

        @Sendable func round(_ r: Int) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                func run(_ client: NodeClient, _ flow: String, _ arguments: String, _ id: String) {
                    group.addTask {
                        let done = try await client.run(flow, arguments: Array(arguments.utf8), clientRequestId: "\(id)-\(r)")
                        #expect(done.status == "completed", "\(id)-\(r): \(done.status): \(done.error ?? "")")
                    }
                }
                for i in 0..<Self.paysToBob { run(alice, "MoveTokens", #"{"owner":"\#(a)","newOwner":"\#(b)","amount":1}"#, "to-bob-\(i)") }
                for i in 0..<Self.paysToAlice {
                    run(i % 2 == 0 ? bobA : bobB, "MoveTokens", #"{"owner":"\#(b)","newOwner":"\#(a)","amount":2}"#, "to-alice-\(i)")
                }
                for i in 0..<Self.swaps {
                    run(i % 2 == 0 ? bobA : bobB, "SwapTokens", #"{"owner":"\#(b)","counterparty":"\#(a)","give":25,"want":10}"#, "swap-\(i)")
                }
                try await group.waitForAll()
            }
        }
        try await round(0)
        // The process that delivers Bob's outbox is killed while the second round runs; the other
        // takes its partitions over, its flows resume there, and it wins the outbox's election and
        // delivers the outbox from then on.
        var outbox = ""
        try await eventually("one of Bob's processes delivers the outbox") {
            for id in ["A", "B"] where try await Self.metric("hawser_outbox_delivering", at: rpc[id]!) == 1 { outbox = id }
            return !outbox.isEmpty
        }
        let before = try await network.balances("alice")[a] ?? 0
        let during = Task { try await round(1) }
        try await eventually("the second round's flows are under way") { try await network.balances("alice")[a] ?? 0 != before }
        if news == .busRestarted, let nats, let server = nats.servers.first {
            server.kill9()
            network.kill("bob-\(outbox)")
            try nats.restart(server)
        } else {
            network.kill("bob-\(outbox)")
        }
        try await during.value
        let survivor = outbox == "A" ? "B" : "A"
        // The survivor serves every partition once the killed one's leases lapse (its flows may have
        // needed only some of them to finish the round).
        try await eventually("the survivor serves every partition") {
            HotHotTests.serving(network.process("bob-\(survivor)")?.printed ?? "") == [0, 1, 2, 3]
        }
        try await eventually("the survivor delivers the outbox") { try await Self.metric("hawser_outbox_delivering", at: rpc[survivor]!) == 1 }

        let rounds = 2
        let aliceGains = rounds * (2 * Self.paysToAlice - Self.paysToBob + 15 * Self.swaps)
        try await eventually("both vaults hold every payment and swap", timeout: .seconds(120)) {
            let (alices, bobs) = (try await network.balances("alice"), try await network.balances("bob"))
            return alices == [a: Int64(16_000 + aliceGains)] && bobs == [b: Int64(16_000 - aliceGains)]
        }
        // Each payment and swap recorded once by its receiver: one responder each.
        for (client, flow, count) in [(bobA, "ReceiveTokens", Self.paysToBob), (alice, "ReceiveTokens", Self.paysToAlice),
                                      (alice, "AcceptSwap", Self.swaps)] {
            let responders = try await PaymentNetworkTests.allFlows(client, named: flow)
            #expect(responders.count == rounds * count && responders.allSatisfy { $0.status == "completed" }, "\(flow): \(responders.map(\.status))")
        }
        for client in [alice, bobA, bobB] { try await client.shutdown() }
        if nats != nil {
            let heard = try await Self.metric(#"hawser_bus_events_total{direction="heard"}"#, at: rpc[survivor]!) ?? 0
            #expect(heard > 0, "the survivor heard the other process's news on the bus")
        }
        if news == .busRestarted {
            let refusal = "refused an event on the bus: it is of schema 2, and this process knows schema 1 only"
            for id in ["A", "B"] {
                let said = try String(contentsOfFile: log(id), encoding: .utf8).components(separatedBy: refusal).count - 1
                #expect(said == 1, "bob-\(id) said it \(said) times")
            }
        }
    }

    /// The value of the metric line `name` (with its labels) at the node's `/metrics`, if it has one.
    static func metric(_ name: String, at port: Int) async throws -> Double? {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(5))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.dropFirst(name.count + 1)) }
    }

    /// Publishes an event of schema 2 on Bob's bus every 50 ms, as a newer Hawser would, until cancelled.
    static func publishNewerEvents(on servers: [String]) async throws {
        var options = NATSOptions(servers: servers)
        options.retryOnFailedInitialConnect = true
        let client = try await NATSClient.connect(options)
        var event = Hawser_Bus_V1_BusEvent()
        (event.schema, event.sender) = (2, "Z")
        event.outboxWritten = Hawser_Bus_V1_OutboxWritten()
        let bytes: [UInt8] = try event.serializedBytes()
        while !Task.isCancelled {
            try? await client.publish("hawser.bob.events", payload: bytes)
            try? await Task.sleep(for: .milliseconds(50))
        }
        await client.close()
    }
}
