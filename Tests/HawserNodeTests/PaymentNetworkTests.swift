import Foundation
import HawserClient
import HawserCore
import HawserTestSupport
import Sim
import Synchronization
import Testing

/// Payments between nodes that are separate processes, each notarised by a notary process and
/// carried over signed peer-to-peer sessions (docs/p2p.md, docs/tokens.md).
@Suite(.timeLimit(.minutes(10)), .serialized) struct PaymentNetworkTests {
    @Test func aPaymentAndASwapBetweenTwoNodeProcessesLandOnBothSides() async throws {
        let dir = try TemporaryDirectory()
        let network = try await PaymentNetwork.start(in: dir.path)
        defer { network.stop() }
        let (alice, bob) = (try network.client("alice"), try network.client("bob"))
        let (a, b) = (network.party("alice"), network.party("bob"))
        for (client, owner) in [(alice, a), (bob, b)] {
            let issued = try await client.run("IssueTokens", arguments: Array(#"{"owner":"\#(owner)","amount":100}"#.utf8))
            #expect(issued.status == "completed", "\(issued.error ?? "")")
        }
        let paid = try await alice.run("MoveTokens", arguments: Array(#"{"owner":"\#(a)","newOwner":"\#(b)","amount":30}"#.utf8))
        #expect(paid.status == "completed", "\(paid.error ?? "")")
        #expect(try await network.balances("alice") == [a: 70])
        #expect(try await network.balances("bob") == [b: 130])
        // A swap: Alice gives 10 of hers for 25 of Bob's; both sign, both record.
        let swapped = try await alice.run("SwapTokens", arguments: Array(#"{"owner":"\#(a)","counterparty":"\#(b)","give":10,"want":25}"#.utf8))
        #expect(swapped.status == "completed", "\(swapped.error ?? "")")
        #expect(try await network.balances("alice") == [a: 85])
        #expect(try await network.balances("bob") == [b: 115])
        try await alice.shutdown()
        try await bob.shutdown()
    }

    /// A receiver paused (SIGSTOP) past the payer's session timeout: the payment fails at the
    /// payer with `session_timeout`, but it is final (notarised, and the payer's side recorded),
    /// so once the receiver runs again it takes the payment from the outbox and records it:
    /// no token is lost or made.
    @Test func aReceiverPausedPastTheSessionTimeoutStillRecordsThePayment() async throws {
        let dir = try TemporaryDirectory()
        let network = try await PaymentNetwork.start(in: dir.path) { node, configuration in
            if node == "alice" { configuration.sessions.timeoutMillis = 2_000 }
        }
        defer { network.stop() }
        let (a, b) = (network.party("alice"), network.party("bob"))
        let alice = try network.client("alice")
        #expect(try await alice.run("IssueTokens", arguments: Array(#"{"owner":"\#(a)","amount":100}"#.utf8)).status == "completed")
        let bob = try #require(network.process("bob"))
        bob.pause()
        let paid = try await alice.run("MoveTokens", arguments: Array(#"{"owner":"\#(a)","newOwner":"\#(b)","amount":40}"#.utf8))
        bob.resume()
        #expect(paid.status == "failed" && paid.error?.hasPrefix("session_timeout") == true, "\(paid.status): \(paid.error ?? "")")
        #expect(try await network.balances("alice") == [a: 60])
        try await eventually("Bob took the payment once he ran again", timeout: .seconds(60)) {
            try await network.balances("bob") == [b: 40]
        }
        try await alice.shutdown()
    }

    /// Payments from Alice to Bob while each node is killed (-9) and restarted at random moments:
    /// every payment the API saw completed is recorded once by both sides, and tokens are
    /// conserved. `HAWSER_PAYMENT_KILLS` (default 2) kills of each node; the issue's run uses 10.
    @Test func paymentsSurviveKillsOfTheSenderAndTheReceiver() async throws {
        let kills = Int(ProcessInfo.processInfo.environment["HAWSER_PAYMENT_KILLS"] ?? "") ?? 2
        let dir = try TemporaryDirectory()
        let network = try await PaymentNetwork.start(in: dir.path)
        defer { network.stop() }
        let (a, b) = (network.party("alice"), network.party("bob"))
        let alice = try network.client("alice")
        for i in 0..<16 {
            let issued = try await alice.run("IssueTokens", arguments: Array(#"{"owner":"\#(a)","amount":1000}"#.utf8), clientRequestId: "seed-\(i)")
            #expect(issued.status == "completed")
        }
        let history = try HistoryWriter(path: dir.path + "/history.jsonl")
        let done = Atomic(false)
        let payments = 40 * (kills + 1)
        let load = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<8 {
                    group.addTask {
                        for i in stride(from: caller, to: payments, by: 8) {
                            let id = "pay-\(i)"
                            history.record(HistoryEvent.startInvoke(clientRequestId: id).by(client: "c\(caller)"))
                            let final = try await alice.run("MoveTokens", arguments: Array(#"{"owner":"\#(a)","newOwner":"\#(b)","amount":1}"#.utf8),
                                                            clientRequestId: id)
                            history.record(HistoryEvent.startOk(clientRequestId: id, flowId: final.id).by(client: "c\(caller)"))
                            history.record(HistoryEvent.result(flowId: final.id, status: final.status,
                                                               result: final.result.flatMap { try? JSONValue(parsing: [UInt8]($0)) })
                                .by(client: "c\(caller)"))
                        }
                    }
                }
                try await group.waitForAll()
            }
            done.store(true, ordering: .releasing)
        }
        var random = SeededGenerator(seed: UInt64(ProcessInfo.processInfo.environment["HAWSER_FAULT_SEED"] ?? "") ?? 7)
        for round in 0..<(2 * kills) where !done.load(ordering: .acquiring) {
            let victim = round % 2 == 0 ? "bob" : "alice"
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...1_500, using: &random)))
            network.kill(victim)
            try await network.startNode(victim)
        }
        try await load.value
        try history.close()
        let checked = HistoryChecker().check(try History(jsonLines: String(contentsOfFile: history.path, encoding: .utf8)))
        #expect(checked.violations.isEmpty, "\(checked.violations)")
        #expect(checked.counts.flows == payments)
        // Every payment completed (none failed: a payment survives its sender's and receiver's crashes).
        let bobClient = try network.client("bob")
        try await eventually("Bob recorded every payment", timeout: .seconds(120)) {
            try await network.balances("bob")[b] == Int64(payments)
        }
        let aliceBalance = try await network.balances("alice")[a] ?? 0
        #expect(aliceBalance == 16_000 - Int64(payments), "tokens are conserved across the network")
        let received = try await bobClient.flows(matching: NodeFlowFilter(status: "completed", flow: "ReceiveTokens", limit: 1_000))
        #expect(received.count == payments, "one responder per payment")
        try await alice.shutdown()
        try await bobClient.shutdown()
    }
}
