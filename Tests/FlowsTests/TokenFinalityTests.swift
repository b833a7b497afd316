import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Sessions
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

    /// The acceptor's wait for the final message times out before the offerer notarises: it
    /// moves its tokens back to itself, after which the offerer's notarisation is refused.
    @Test func anAcceptorThatHearsNoFinalTakesItsTokensBackAndTheSwapCannotCommit() async throws {
        let directory = try TemporaryDirectory()
        let notary = try SharedNotary(directory: directory.path)
        let network = InProcessNetwork()
        let held = GatedNotary(notary.port)
        let a = try TokenNode(directory: directory.path + "/a", parties: ["O=Alice"], network: network, notary: notary, notaryPort: held)
        let b = try TokenNode(directory: directory.path + "/b", parties: ["O=Bob"], network: network, notary: notary,
                              sessions: Self.short(1))
        try await a.start()
        try await b.start()
        try await a.issue(100, to: "O=Alice")
        try await b.issue(50, to: "O=Bob")
        held.armed.withLock { $0 = true }
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
        await a.stop()
        await b.stop()
        await notary.stop()
    }

    /// The swap is committed but its final message does not reach the acceptor within its
    /// timeout: asked, the notary says the swap spent its tokens, and it records the swap.
    @Test func anAcceptorThatHearsNoFinalAfterTheSwapCommittedRecordsIt() async throws {
        let directory = try TemporaryDirectory()
        let notary = try SharedNotary(directory: directory.path)
        let network = InProcessNetwork()
        let link = BlockableTransport(network: network)
        // Alice's node reaches the notary through `cut`, which, armed, cuts her link to Bob as she notarises.
        let cut = GatedNotary(notary.port, arrived: { link.blocked.withLock { $0 = true } })
        cut.gate.release()
        let a = try TokenNode(directory: directory.path + "/a", parties: ["O=Alice"], network: network, notary: notary,
                              transport: link, sessions: Self.short(3), notaryPort: cut)
        let b = try TokenNode(directory: directory.path + "/b", parties: ["O=Bob"], network: network, notary: notary,
                              sessions: Self.short(1))
        try await a.start()
        try await b.start()
        try await a.issue(100, to: "O=Alice")
        try await b.issue(50, to: "O=Bob")
        cut.armed.withLock { $0 = true }
        let swap = try await a.engine.start(SwapTokens(owner: "O=Alice", counterparty: "O=Bob", give: 30, want: 20))
        try await eventually("Bob's AcceptSwap ended") { try await b.flows(named: "AcceptSwap").first?.status.isTerminal == true }
        let accepted = try #require(try await b.flows(named: "AcceptSwap").first)
        #expect(accepted.status == .completed, "\(accepted.error ?? "")")
        let received = try FlowCoding.decode(TokenReceipt.self, accepted.result ?? [])
        #expect(received.unacknowledged?.hasPrefix("session_timeout") == true, "\(received)")
        link.blocked.withLock { $0 = false }
        let offered = try await a.engine.waitForEnd(swap.id, timeout: .seconds(60))
        #expect(offered.status == .completed, "\(offered.error ?? "")")
        let sent = try FlowCoding.decode(TokenReceipt.self, offered.result ?? [])
        #expect(sent.txId == received.txId)
        #expect(try await a.balances() == ["O=Alice": 90])
        #expect(try await b.balances() == ["O=Bob": 60])
        #expect(try await a.locked().isEmpty)
        #expect(try await b.locked().isEmpty)
        await a.stop()
        await b.stop()
        await notary.stop()
    }
}
