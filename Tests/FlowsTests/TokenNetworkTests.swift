import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Sessions
import Testing
import TokenSample
import Vault

/// The token sample across nodes: Alice's node A and Bob's node B, each with its own database,
/// over `InProcessNetwork`, sharing one embedded notary (docs/tokens.md).
@Suite(.timeLimit(.minutes(10))) struct TokenNetworkTests {
    /// Runs `body` with nodes A (Alice) and B (Bob) started, then stops them and the notary.
    /// `duplicating`: every message is delivered twice, as a link whose acknowledgement was lost would.
    func withNodes(duplicating: Bool = false, _ body: (TokenNode, TokenNode, SharedNotary) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        let notary = try SharedNotary(directory: directory.path)
        let network = InProcessNetwork()
        let transport = duplicating ? DuplicatingTransport(network: network) : nil
        let a = try TokenNode(directory: directory.path + "/a", parties: ["O=Alice"], network: network, notary: notary, transport: transport)
        let b = try TokenNode(directory: directory.path + "/b", parties: ["O=Bob"], network: network, notary: notary, transport: transport)
        try await running([a, b], notary) { try await body(a, b, notary) }
    }

    /// Starts `nodes`, runs `body`, then stops them and the notary, whatever `body` did.
    func running(_ nodes: [TokenNode], _ notary: SharedNotary, _ body: () async throws -> Void) async throws {
        for node in nodes { try await node.start() }
        var failure: (any Error)?
        do { try await body() } catch { failure = error }
        for node in nodes { await node.stop() }
        await notary.stop()
        if let failure { throw failure }
    }

    /// A party of another node is a valid argument (a payee), but its tokens are spent only on
    /// its own node: the flow fails saying so, not that the party "holds fewer" tokens.
    @Test func aNodeCannotSpendThePartiesOfAnotherNode() async throws {
        try await withNodes { a, b, _ in
            try await b.issue(10, to: "O=Bob")
            let moved = try await a.run(MoveTokens(owner: "O=Bob", newOwner: "O=Alice", amount: 1))
            #expect(moved.status == .failed)
            #expect(moved.error == "this node does not host party `O=Bob`: only its own node can spend its tokens")
            let swapped = try await a.run(SwapTokens(owner: "O=Bob", counterparty: "O=Alice", give: 1, want: 1))
            #expect(swapped.error == "this node does not host party `O=Bob`: only its own node can spend its tokens")
            #expect(try await b.balances() == ["O=Bob": 10])
        }
    }

    @Test func aPaymentToAPartyOnAnotherNodeLandsOnceInBothVaults() async throws {
        try await withNodes { a, b, notary in
            try await a.issue(100, to: "O=Alice")
            let moved = try await a.run(MoveTokens(owner: "O=Alice", newOwner: "O=Bob", amount: 30))
            #expect(moved.status == .completed, "\(moved.error ?? "")")
            let receipt = try FlowCoding.decode(TokenReceipt.self, moved.result ?? [])
            let txId = try #require(SecureHash(hex: receipt.txId))
            #expect(try await a.balances() == ["O=Alice": 70])
            #expect(try await b.balances() == ["O=Bob": 30])
            // Each node records its own party's output of the one transaction; A's input is spent by it.
            let paid = try await b.database.vault.states([StateRef(receipt.outputs[0])!])
            #expect(paid.map(\.owner) == ["O=Bob"])
            #expect(try await a.database.vault.states([StateRef(receipt.outputs[1])!]).map(\.owner) == ["O=Alice"])
            #expect(try await a.database.vault.states([StateRef(receipt.outputs[0])!]).isEmpty)
            #expect(try await a.database.vault.query(VaultQuery(consumption: .consumed)).map(\.consumedBy) == [txId])
            #expect(notary.port.requests(about: txId) == 1)
            let received = try await b.flows(named: "ReceiveTokens")
            #expect(received.map(\.status) == [.completed])
            #expect(try FlowCoding.decode(TokenReceipt.self, received.first?.result ?? []) == receipt)
            #expect(try await a.engine.progress(of: moved.id).map(\.step) == ["selecting", "notarising", "recorded", "sending"])
            #expect(try await a.locked().isEmpty)

            // Bob's tokens, recorded on B, are his to spend: he pays some back.
            let back = try await b.run(MoveTokens(owner: "O=Bob", newOwner: "O=Alice", amount: 12))
            #expect(back.status == .completed, "\(back.error ?? "")")
            #expect(try await b.balances() == ["O=Bob": 18])
            #expect(try await a.balances() == ["O=Alice": 82])
        }
    }

    @Test func aPaymentDeliveredTwiceIsRecordedOnce() async throws {
        try await withNodes(duplicating: true) { a, b, _ in
            try await a.issue(100, to: "O=Alice")
            for amount: Int64 in [30, 5] {
                let moved = try await a.run(MoveTokens(owner: "O=Alice", newOwner: "O=Bob", amount: amount))
                #expect(moved.status == .completed, "\(moved.error ?? "")")
            }
            #expect(try await a.balances() == ["O=Alice": 65])
            #expect(try await b.balances() == ["O=Bob": 35])
            #expect(try await b.flows(named: "ReceiveTokens").map(\.status) == [.completed, .completed])
        }
    }

    @Test func aPaymentToAPartyOutsideTheDirectoryFailsClearly() async throws {
        try await withNodes { a, _, _ in
            try await a.issue(10, to: "O=Alice")
            // A client's start is refused before any flow exists...
            await #expect(throws: FlowEngineError.invalidArguments("MoveTokens", .unknownParty("newOwner", "O=Zed"))) {
                try await a.engine.start(MoveTokens(owner: "O=Alice", newOwner: "O=Zed", amount: 5))
            }
            // ...and the flow itself, run by another, fails before it reserves anything.
            let moved = try await a.run(MoveInline(move: MoveTokens(owner: "O=Alice", newOwner: "O=Zed", amount: 5)))
            #expect(moved.status == .failed)
            #expect(moved.error == "`O=Zed` is not a party of the network: no tokens can move to it")
            #expect(try await a.balances() == ["O=Alice": 10])
            #expect(try await a.outbox().isEmpty)
        }
    }

    @Test func forgedPaymentsAreRefusedAndRecordNothing() async throws {
        try await withNodes { a, b, notary in
            let forgery = Forgery(notary: notary.port)
            let cases: [(String, [UInt8])] = [
                ("the notary's answer does not verify: the signature over the batch root does not verify under the notary key",
                 try await forgery.payment(tamper: .notarySignature)),
                ("the notarisation request is not signed with O=Alice's key", try await forgery.payment(tamper: .requestKey)),
                ("the transaction's first output does not pay O=Bob", try await forgery.payment(tamper: .recipient)),
            ]
            for (reason, payload) in cases {
                let sent = try await a.run(SendPayload(payload: Data(payload)))
                #expect(sent.status == .failed)
                #expect(sent.error == "counterparty_failed: the counterparty's flow failed: refused the payment from O=Alice: \(reason)")
            }
            // An honest payment made the same way is taken: the forgeries failed only on what was forged.
            let honest = try await a.run(SendPayload(payload: Data(try await forgery.payment(tamper: nil))))
            #expect(honest.status == .completed, "\(honest.error ?? "")")
            #expect(try await b.balances() == ["O=Bob": 5])
            #expect(try await b.flows(named: "ReceiveTokens").map(\.status).filter { $0 == .failed }.count == cases.count)
        }
    }

    /// The notary checks who asks, not who owns what a transaction spends: a member had a spend of
    /// the receiver's own tokens notarised, then presented it as a payment (the receiver recorded
    /// its loss) or as a swap's inputs (the receiver signed it; found from outside). Both are
    /// refused, and the receiver's tokens stay its own in its vault.
    @Test func aPaymentOrASwapBuiltOnTheReceiversOwnTokensIsRefused() async throws {
        try await withNodes { a, b, notary in
            try await b.issue(49, to: "O=Bob")
            let held = try #require(try await b.database.vault.query(VaultQuery(type: Token.stateType, owner: "O=Bob")).first)
            let forgery = Forgery(notary: notary.port)
            let theft = try await forgery.payment(tamper: nil, spending: held.ref,
                                                  outputs: [Token(owner: "O=Bob", amount: 1), Token(owner: "O=Alice", amount: 48)])
            let sent = try await a.run(SendPayload(payload: Data(theft)))
            #expect(sent.status == .failed)
            #expect(sent.error == "counterparty_failed: the counterparty's flow failed: refused the payment from O=Alice: "
                + "the transaction spends \(held.ref), a state of O=Bob, not of O=Alice")
            let proposal = try FlowCoding.encode(SwapProposal(give: 1, want: 1, inputs: [held.ref], change: 48))
            let proposed = try await a.run(SendPayload(payload: Data(proposal), by: .swap))
            #expect(proposed.status == .failed)
            #expect(proposed.error?.hasSuffix("refused the swap proposal of O=Alice: the transaction spends \(held.ref), a state of O=Bob, "
                                              + "not of O=Alice") == true, "\(proposed.error ?? "")")
            #expect(try await b.database.vault.states([held.ref]).first?.consumedBy == nil, "nothing recorded")
            #expect(try await b.locked().isEmpty, "the acceptor reserved nothing")
        }
    }

    @Test func theSenderRestartedMidPaymentCompletesExactlyOnce() async throws {
        let directory = try TemporaryDirectory()
        let notary = try SharedNotary(directory: directory.path)
        let network = InProcessNetwork()
        var a = try TokenNode(directory: directory.path + "/a", parties: ["O=Alice"], network: network, notary: notary)
        try await a.start()
        try await a.issue(100, to: "O=Alice")
        // B is down: the payment is notarised and waits in A's outbox, the flow waiting for B's answer.
        let started = try await a.engine.start(MoveTokens(owner: "O=Alice", newOwner: "O=Bob", amount: 30))
        try await eventually("A's payment waits for B") {
            try await a.outbox().count == 2 && a.hub.link.failures(of: "O=Bob") > 0
        }
        await a.stop()
        a = try TokenNode(directory: directory.path + "/a", parties: ["O=Alice"], network: network, notary: notary)
        try await a.start()
        let b = try TokenNode(directory: directory.path + "/b", parties: ["O=Bob"], network: network, notary: notary)
        try await b.start()
        let moved = try await a.engine.waitForEnd(started.id, timeout: .seconds(120))
        #expect(moved.status == .completed, "\(moved.error ?? "")")
        let txId = try #require(SecureHash(hex: try FlowCoding.decode(TokenReceipt.self, moved.result ?? []).txId))
        #expect(notary.port.requests(about: txId) == 1, "the replay took the notary's answer from the journal")
        #expect(try await a.balances() == ["O=Alice": 70])
        #expect(try await b.balances() == ["O=Bob": 30])
        #expect(try await b.flows(named: "ReceiveTokens").map(\.status) == [.completed])
        try await eventually("A's outbox drained") { try await a.outbox().isEmpty }
        #expect(try await a.locked().isEmpty)
        await a.stop()
        await b.stop()
        await notary.stop()
    }

    @Test func aSwapCompletesWithBalancesRightOnBothSides() async throws {
        try await withNodes { a, b, notary in
            try await a.issue(100, to: "O=Alice")
            try await b.issue(50, to: "O=Bob")
            let swapped = try await a.run(SwapTokens(owner: "O=Alice", counterparty: "O=Bob", give: 30, want: 20))
            #expect(swapped.status == .completed, "\(swapped.error ?? "")")
            let receipt = try FlowCoding.decode(TokenReceipt.self, swapped.result ?? [])
            #expect(try await a.balances() == ["O=Alice": 90])
            #expect(try await b.balances() == ["O=Bob": 60])
            let accepted = try await b.flows(named: "AcceptSwap")
            #expect(accepted.map(\.status) == [.completed])
            #expect(try FlowCoding.decode(TokenReceipt.self, accepted.first?.result ?? []) == receipt)
            #expect(notary.port.requests(about: SecureHash(hex: receipt.txId)!) == 1)
            #expect(try await a.locked().isEmpty)
            #expect(try await b.locked().isEmpty)
        }
    }

    /// Two parties of one node swap through a session whose both ends are on that node.
    @Test func aSwapBetweenTwoPartiesOfOneNodeCompletes() async throws {
        let directory = try TemporaryDirectory()
        let notary = try SharedNotary(directory: directory.path)
        let network = InProcessNetwork()
        let node = try TokenNode(directory: directory.path + "/a", parties: ["O=Alice", "O=Bob"], network: network, notary: notary)
        try await running([node], notary) {
            try await node.issue(100, to: "O=Alice")
            try await node.issue(50, to: "O=Bob")
            let swapped = try await node.run(SwapTokens(owner: "O=Alice", counterparty: "O=Bob", give: 30, want: 20))
            #expect(swapped.status == .completed, "\(swapped.error ?? "")")
            #expect(try await node.balances() == ["O=Alice": 90, "O=Bob": 60])
            #expect(try await node.flows(named: "AcceptSwap").map(\.status) == [.completed])
            #expect(try await node.locked().isEmpty)
            // Every message of the session, both ways, landed in this node's inbox (at least the
            // proposal, the offer, the closing and the acknowledgement; a farewell that arrives
            // after both flows ended is not kept); once both have ended, none is kept.
            #expect(try await node.hub.pruneInbox() >= 4)
            #expect(try await node.hub.pruneInbox() == 0)
        }
    }

    /// A party cannot swap with itself: the flow says so at once rather than waiting out a session.
    @Test func aSwapWithOneselfIsRefusedAtOnce() async throws {
        try await withNodes { a, _, _ in
            try await a.issue(100, to: "O=Alice")
            let swapped = try await a.run(SwapTokens(owner: "O=Alice", counterparty: "O=Alice", give: 30, want: 20))
            #expect(swapped.status == .failed)
            #expect(swapped.error == "O=Alice cannot swap with itself", "\(swapped.error ?? "")")
            #expect(try await a.balances() == ["O=Alice": 100])
            #expect(try await a.locked().isEmpty)
            // Any flow: a session's two ends would share the inbox keys of one party.
            let alone = try await a.run(SendPayload(payload: Data([1]), to: "O=Alice"))
            #expect(alone.status == .failed && alone.error == "O=Alice cannot open a session with itself", "\(alone.error ?? "")")
            #expect(try await a.outbox().isEmpty)
        }
    }

    /// An acceptor gives no more than it gets: a swap of 1 for all of Bob's tokens took them,
    /// with no one on Bob's side asked (found from outside).
    @Test func aSwapThatAsksMoreThanItGivesIsRefused() async throws {
        try await withNodes { a, b, _ in
            try await a.issue(100, to: "O=Alice")
            try await b.issue(50, to: "O=Bob")
            let swapped = try await a.run(SwapTokens(owner: "O=Alice", counterparty: "O=Bob", give: 1, want: 50))
            #expect(swapped.status == .failed)
            #expect(swapped.error?.contains("it asks 50 tokens of O=Bob for 1: an acceptor gives no more than it gets") == true, "\(swapped.error ?? "")")
            #expect(try await a.balances() == ["O=Alice": 100])
            #expect(try await b.balances() == ["O=Bob": 50])
            #expect(try await a.locked().isEmpty)
            #expect(try await b.locked().isEmpty)
        }
    }

    @Test func aSwapTheCounterpartyCannotPayFailsOnBothSidesWithNoLockLeft() async throws {
        try await withNodes { a, b, _ in
            try await a.issue(100, to: "O=Alice")
            try await b.issue(5, to: "O=Bob")
            let swapped = try await a.run(SwapTokens(owner: "O=Alice", counterparty: "O=Bob", give: 30, want: 20))
            #expect(swapped.status == .failed)
            #expect(swapped.error == "counterparty_failed: the counterparty's flow failed: O=Bob holds fewer than 20 unreserved tokens")
            #expect(try await b.flows(named: "AcceptSwap").map(\.status) == [.failed])
            #expect(try await a.balances() == ["O=Alice": 100])
            #expect(try await b.balances() == ["O=Bob": 5])
            #expect(try await a.locked().isEmpty)
            #expect(try await b.locked().isEmpty)
        }
    }
}

/// Runs a `MoveTokens` inside another flow, past the start's argument checks.
struct MoveInline: Flow {
    static let flowName = "MoveInline"
    var move: MoveTokens
    func run(_ context: FlowContext) async throws -> TokenReceipt { try await context.subFlow(move) }
}

/// Payments from Alice to Bob made outside any flow, notarised for real, then forged.
struct Forgery {
    enum Tamper { case notarySignature, requestKey, recipient }
    let notary: CountingNotary

    /// A move of 5 tokens from a made-up input, or with `tamper` forged; or of `spending` to `outputs`.
    func payment(tamper: Tamper?, spending: StateRef? = nil, outputs: [Token]? = nil) async throws -> [UInt8] {
        let alice = sampleKeys.signingKey(of: "O=Alice")!
        let input = spending ?? StateRef(txId: .sha256(Array("forged-\(UInt64.random(in: 0 ... .max))".utf8)), index: 0)
        let tx = TokenTransaction(command: "move", inputs: [input],
                                  outputs: outputs ?? [Token(owner: tamper == .recipient ? "O=Carol" : "O=Bob", amount: 5)], nonce: 1)
        var request = NotarisationRequest.signed(txId: tx.id, inputs: tx.inputs, requesterName: "O=Alice", key: alice,
                                                 notary: notary.identity.publicKey)
        var answer = try await notary.notarise(request)
        #expect(answer.outcome == .committed)
        switch tamper {
        case .notarySignature: answer.signature = carolKey.sign(NotarisationAnswer.batchSigningPayload(root: answer.root!))
        case .requestKey: request.signature = carolKey.sign(request.signingPayload(notary: notary.identity.publicKey))
        case .recipient, nil: break
        }
        return try FlowCoding.encode(TokenPayment(transaction: tx, request: request, answer: answer))
    }
}
