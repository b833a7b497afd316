import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Sessions
import Synchronization
import Testing
import TokenSample

/// Once the notary has committed a transaction it is final: what the counterparty does then
/// (nothing, for longer than the session timeout) neither fails the flow that committed it nor
/// leaves a party's vault offering spent tokens (found from outside: swaps committed and recorded
/// by nobody while the offerer's node was paused, after which every spend of their inputs was a
/// conflict; payments reported failed that had been made).
@Suite(.timeLimit(.minutes(2))) struct TokenFinalityTests {
    static func short(_ seconds: Int) -> SessionConfiguration {
        var configuration = SessionNode.configuration
        configuration.timeout = .seconds(seconds)
        return configuration
    }

    @Test func aPaymentWhoseReceiverIsDownCompletesAndTheReceiverRecordsItWhenBack() async throws {
        let directory = try TemporaryDirectory()
        let notary = try SharedNotary(directory: directory.path)
        let network = InProcessNetwork()
        let a = try TokenNode(directory: directory.path + "/a", parties: ["O=Alice"], network: network, notary: notary,
                              sessions: Self.short(1))
        try await a.start()
        try await a.issue(100, to: "O=Alice")
        // Bob's node is down: the payment waits in Alice's outbox, and her flow for its acknowledgement.
        let moved = try await a.run(MoveTokens(owner: "O=Alice", newOwner: "O=Bob", amount: 30))
        #expect(moved.status == .completed, "\(moved.error ?? "")")
        let receipt = try FlowCoding.decode(TokenReceipt.self, moved.result ?? [])
        #expect(receipt.unacknowledged?.hasPrefix("session_timeout: nothing came from O=Bob") == true, "\(receipt)")
        #expect(try await a.balances() == ["O=Alice": 70])
        let b = try TokenNode(directory: directory.path + "/b", parties: ["O=Bob"], network: network, notary: notary)
        try await b.start()
        try await eventually("Bob recorded the payment") { try await b.balances() == ["O=Bob": 30] }
        await a.stop()
        await b.stop()
        await notary.stop()
    }

    /// Alice's node A, reaching the notary through the `GatedNotary` and its peers through the
    /// transport `configure` makes, with A's session timeout it gives; Bob's node B, with a session
    /// timeout of 1 s. Alice holds 100 tokens and Bob 50 when `body` runs, the gate then armed;
    /// the nodes and the notary are stopped after it, whatever it does.
    func withSwapNodes(_ configure: (SharedNotary, InProcessNetwork) -> (GatedNotary, (any PeerTransport)?, aTimeout: Int),
                       _ body: (TokenNode, TokenNode, GatedNotary) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        let notary = try SharedNotary(directory: directory.path)
        let network = InProcessNetwork()
        let (port, transport, aTimeout) = configure(notary, network)
        let a = try TokenNode(directory: directory.path + "/a", parties: ["O=Alice"], network: network, notary: notary,
                              transport: transport, sessions: Self.short(aTimeout), notaryPort: port)
        let b = try TokenNode(directory: directory.path + "/b", parties: ["O=Bob"], network: network, notary: notary,
                              sessions: Self.short(1))
        try await TokenNetworkTests().running([a, b], notary) {
            try await a.issue(100, to: "O=Alice")
            try await b.issue(50, to: "O=Bob")
            port.armed.withLock { $0 = true }
            try await body(a, b, port)
        }
    }

    /// The acceptor's wait for the final message times out before the offerer notarises: it
    /// moves its tokens back to itself, after which the offerer's notarisation is refused.
    @Test func anAcceptorThatHearsNoFinalTakesItsTokensBackAndTheSwapCannotCommit() async throws {
        try await withSwapNodes({ notary, _ in (GatedNotary(notary.port), nil, aTimeout: 120) }) { a, b, held in
            let swap = try await a.engine.start(SwapTokens(owner: "O=Alice", counterparty: "O=Bob", give: 30, want: 20))
            await held.gate.reached()
            let accepted = try #require(try await b.flows(named: "AcceptSwap").first)
            // Waiting, the acceptor is not killed: the offerer may be committing its agreement.
            await #expect(throws: FlowEngineError.notarising(accepted.id)) { try await b.engine.kill(accepted.id) }
            let settled = try await b.engine.waitForEnd(accepted.id, timeout: .seconds(60))
            #expect(settled.status == .failed)
            #expect(settled.error?.contains("the swap was not committed: O=Bob's tokens were moved back to it in transaction") == true,
                    "\(settled.error ?? "")")
            held.gate.release()
            let offered = try await a.engine.waitForEnd(swap.id, timeout: .seconds(60))
            #expect(offered.status == .failed)
            #expect(offered.error?.hasSuffix(": conflict") == true, "\(offered.error ?? "")")
            #expect(try await a.balances() == ["O=Alice": 100])
            #expect(try await b.balances() == ["O=Bob": 50])
            #expect(try await a.locked().isEmpty)
            #expect(try await b.locked().isEmpty)
            // Both can spend again.
            #expect(try await a.run(MoveTokens(owner: "O=Alice", newOwner: "O=Bob", amount: 100)).status == .completed)
            #expect(try await b.run(MoveTokens(owner: "O=Bob", newOwner: "O=Alice", amount: 150)).status == .completed)
        }
    }

    /// The swap is committed but its final message does not reach the acceptor within its
    /// timeout: asked, the notary says the swap spent its tokens, and it records the swap.
    @Test func anAcceptorThatHearsNoFinalAfterTheSwapCommittedRecordsIt() async throws {
        let link = Mutex<BlockableTransport?>(nil)
        try await withSwapNodes({ notary, network in
            // Alice's notary port, armed, cuts her link to Bob as she notarises (and lets her through).
            let transport = BlockableTransport(network: network)
            link.withLock { $0 = transport }
            let cut = GatedNotary(notary.port, arrived: { transport.blocked.withLock { $0 = true } })
            cut.gate.release()
            return (cut, transport, aTimeout: 3)
        }) { a, b, _ in
            let swap = try await a.engine.start(SwapTokens(owner: "O=Alice", counterparty: "O=Bob", give: 30, want: 20))
            try await eventually("Bob's AcceptSwap ended") { try await b.flows(named: "AcceptSwap").first?.status.isTerminal == true }
            let accepted = try #require(try await b.flows(named: "AcceptSwap").first)
            #expect(accepted.status == .completed, "\(accepted.error ?? "")")
            let received = try FlowCoding.decode(TokenReceipt.self, accepted.result ?? [])
            #expect(received.unacknowledged?.hasPrefix("session_timeout") == true, "\(received)")
            link.withLock { $0?.blocked.withLock { $0 = false } }
            let offered = try await a.engine.waitForEnd(swap.id, timeout: .seconds(60))
            #expect(offered.status == .completed, "\(offered.error ?? "")")
            let sent = try FlowCoding.decode(TokenReceipt.self, offered.result ?? [])
            #expect(sent.txId == received.txId)
            #expect(try await a.balances() == ["O=Alice": 90])
            #expect(try await b.balances() == ["O=Bob": 60])
            #expect(try await a.locked().isEmpty)
            #expect(try await b.locked().isEmpty)
        }
    }
}
