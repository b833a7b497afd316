import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Sessions
import Testing

/// Flow sessions between two nodes in one process: Alice's node and Bob's, each with its own
/// database, exchanging messages through their outboxes, link managers and inboxes.
@Suite(.timeLimit(.minutes(10))) struct SessionTests {
    /// Nodes made under one directory, on one network.
    struct Network {
        let root: String
        let network = InProcessNetwork()

        func node(_ name: String, _ party: String, duplicating: Bool = false, flakySeed: UInt64? = nil,
                  configuration: SessionConfiguration = SessionNode.configuration, hooks: Hooks = Hooks()) throws -> SessionNode {
            let transport: (any PeerTransport)? = if let flakySeed { FlakyTransport(network: network, seed: flakySeed) }
                else if duplicating { DuplicatingTransport(network: network) } else { nil }
            return try SessionNode(directory: root + "/" + name, parties: [party], network: network, transport: transport,
                                   configuration: configuration, hooks: hooks)
        }

        func started(_ nodes: SessionNode...) async throws {
            for node in nodes { try await node.start() }
        }
    }

    /// A flow's last message goes out with its final write, after which nothing of the flow
    /// wakes the link manager: the commit itself must, or the message waits for the next poll
    /// (here two minutes, longer than the test waits).
    @Test(.timeLimit(.minutes(2))) func aFlowsLastMessageGoesOutWithoutWaitingForThePoll() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        var slowPoll = SessionNode.configuration
        slowPoll.pollInterval = .seconds(120)
        let alice = try net.node("alice", "O=Alice", configuration: slowPoll)
        let bob = try net.node("bob", "O=Bob", configuration: slowPoll)
        try await net.started(alice, bob)
        let ended = try await alice.engine.waitForEnd(try await alice.engine.start(PingFlow(rounds: 1)).id)
        #expect(ended.status == .completed, "\(ended.error ?? "")")
        // Alice's close went out with her final write; Bob's responder ends when it arrives.
        try await eventually("Bob's responder saw the close", timeout: .seconds(30)) {
            try await bob.flows(named: "PongResponder").first?.status == .completed
        }
        await alice.stop()
        await bob.stop()
    }

    /// What a flow takes with `receive` is journaled with its next write, not in a transaction of
    /// its own (a replay before that write takes the message again from the inbox): Alice's
    /// one-round ping commits its `receive` entry with its end.
    @Test func aReceivedMessageIsJournaledWithTheFlowsNextWrite() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        var recording: DurabilityTests.BreakableStore?
        let alice = try SessionNode(directory: directory.path + "/alice", parties: ["O=Alice"], network: net.network) { flows in
            let store = DurabilityTests.BreakableStore(flows)
            recording = store
            return store
        }
        let bob = try net.node("bob", "O=Bob")
        try await net.started(alice, bob)
        let ended = try await alice.engine.waitForEnd(try await alice.engine.start(PingFlow(rounds: 1)).id)
        #expect(ended.status == .completed)
        await alice.stop()
        await bob.stop()
        let store = try #require(recording)
        let transactions = Array(zip(store.journaled.withLock { $0 }, store.committed.withLock { $0 }))
        let withReceive = transactions.filter { journaled, _ in journaled.contains(EffectKind.receive) }.map { $0.1 }
        #expect(withReceive.count == 1)
        #expect(withReceive.first?.contains("state") == true, "\(withReceive)")
    }

    @Test func aPingPongCompletesOnBothSidesAndEmptiesTheOutboxes() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let alice = try net.node("alice", "O=Alice")
        let bob = try net.node("bob", "O=Bob")
        try await net.started(alice, bob)
        let ping = try await alice.engine.start(PingFlow(rounds: 3))
        let ended = try await alice.engine.waitForEnd(ping.id)
        #expect(ended.status == .completed, "\(ended.error ?? "")")
        #expect(try FlowCoding.decode([String].self, ended.result ?? []) == ["pong 1", "pong 2", "pong 3"])
        // Bob's responder answered three times, then saw Alice's close.
        try await eventually("Bob's responder completed") { try await bob.flows(named: "PongResponder").first?.status == .completed }
        let pong = try #require(try await bob.flows(named: "PongResponder").first)
        #expect(try FlowCoding.decode(Int.self, pong.result ?? []) == 3)
        try await eventually("both outboxes drained") {
            let left = try await alice.outbox().count + bob.outbox().count
            return left == 0
        }
        await alice.stop()
        await bob.stop()
    }

    /// Once a session's flows have ended, their inbox rows are pruned on both nodes, and a
    /// message of the session delivered again afterwards (its answer was lost) is answered but
    /// neither kept nor applied: the responder is not started again, nor does it answer again.
    @Test func theInboxOfEndedFlowsIsPrunedAndAMessageDeliveredAgainAfterwardsChangesNothing() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        // Pruned only when the test says (no timed pruning within it).
        var configuration = SessionNode.configuration
        configuration.inboxPruneInterval = .seconds(600)
        let hooks = Hooks()
        let alice = try net.node("alice", "O=Alice", configuration: configuration)
        let bob = try net.node("bob", "O=Bob", configuration: configuration, hooks: hooks)
        try await net.started(alice, bob)
        let ping = try await alice.engine.start(PingFlow(rounds: 2))
        #expect(try await alice.engine.waitForEnd(ping.id).status == .completed)
        try await eventually("Bob's responder completed") { try await bob.flows(named: "PongResponder").first?.status == .completed }
        let responder = try #require(try await bob.flows(named: "PongResponder").first)
        let session = String(try #require(responder.clientRequestId).dropFirst(SessionInbound.responderRequestPrefix.count))
        #expect(try await bob.hub.pruneInbox() == 4, "the initiate, two pings and the close")
        #expect(try await alice.hub.pruneInbox() == 2, "two pongs")
        #expect(try await bob.hub.pruneInbox() == 0)
        #expect(try await alice.hub.pruneInbox() == 0)
        let again = [SessionMessage(session: session, sender: "O=Alice", recipient: "O=Bob", sequence: 1, kind: .initiate,
                                    initiator: .init(flowName: PingFlow.flowName, version: PingFlow.flowVersion)),
                     SessionMessage(session: session, sender: "O=Alice", recipient: "O=Bob", sequence: 2, kind: .data, payload: text("ping 1"))]
        let arrived = try again.map { try ArrivedMessage(body: $0.encoded()) }
        #expect(try await bob.hub.accept(arrived) == [.accepted, .accepted])
        #expect(try await bob.hub.pruneInbox() == 0, "nothing was kept")
        #expect(try await bob.flows(named: "PongResponder").count == 1)
        #expect(hooks.calls("answer") == 2)
        await alice.stop()
        await bob.stop()
    }

    /// An `initiate` whose session id already names another flow on the node (another sender
    /// reusing a session's id) is refused alone with `protocol_violation`: no retry could take
    /// it, and the delivery's other messages are taken. Before, the whole delivery failed as if
    /// the node were unavailable, and the sender retried it for ever (found by a peer written
    /// from the docs).
    @Test func anInitiateOfASessionIdInUseIsRefusedAlone() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let alice = try net.node("alice", "O=Alice"), bob = try net.node("bob", "O=Bob")
        try await net.started(alice, bob)
        let ping = try await alice.engine.start(PingFlow(rounds: 1))
        #expect(try await alice.engine.waitForEnd(ping.id).status == .completed)
        try await eventually("Bob's responder completed") { try await bob.flows(named: "PongResponder").first?.status == .completed }
        let responder = try #require(try await bob.flows(named: "PongResponder").first)
        let session = String(try #require(responder.clientRequestId).dropFirst(SessionInbound.responderRequestPrefix.count))
        let initiator = SessionMessage.Initiator(flowName: PingFlow.flowName, version: PingFlow.flowVersion)
        let delivery = [SessionMessage(session: session, sender: "O=Carol", recipient: "O=Bob", sequence: 1, kind: .initiate, initiator: initiator),
                        SessionMessage(session: "fresh/0", sender: "O=Carol", recipient: "O=Bob", sequence: 1, kind: .initiate, initiator: initiator)]
        let answers = try await bob.hub.accept(try delivery.map { try ArrivedMessage(body: $0.encoded()) })
        guard answers.count == 2, case .refused(let error) = answers[0] else { Issue.record("\(answers)"); return }
        #expect(error.code == .protocolViolation)
        #expect(answers[1] == .accepted)
        try await eventually("the fresh session's responder started") {
            try await bob.flows(named: "PongResponder").contains { $0.clientRequestId == SessionInbound.responderRequestId("fresh/0") }
        }
        #expect(try await bob.flows(named: "PongResponder").count == 2)
        await alice.stop()
        await bob.stop()
    }

    /// The link manager delivers to each recipient on its own: Alice's delivery to Bob hangs (no
    /// answer, no error), and her session with Carol still runs to its end meanwhile. Before,
    /// one message at a time, everything behind Bob's waited for it (the session simulation's
    /// outboxes that could not drain, docs/simulation.md).
    @Test func aRecipientThatDoesNotAnswerHoldsUpOnlyItsOwnMessages() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let holding = HoldingTransport(network: net.network, held: "O=Bob")
        let alice = try SessionNode(directory: directory.path + "/alice", parties: ["O=Alice"], network: net.network, transport: holding)
        let bob = try net.node("bob", "O=Bob"), carol = try net.node("carol", "O=Carol")
        try await net.started(alice, bob, carol)
        let toBob = try await alice.engine.start(PingFlow(rounds: 1))
        try await eventually("Alice's delivery to Bob is held") { holding.holding > 0 }
        let toCarol = try await alice.engine.start(PingFlow(rounds: 2, counterparty: "O=Carol"))
        let withCarol = try await alice.engine.waitForEnd(toCarol.id, timeout: .seconds(60))
        #expect(withCarol.status == .completed, "\(withCarol.error ?? "")")
        #expect(try await alice.engine.record(toBob.id)?.status == .running)
        holding.release()
        let withBob = try await alice.engine.waitForEnd(toBob.id, timeout: .seconds(60))
        #expect(withBob.status == .completed, "\(withBob.error ?? "")")
        #expect(try FlowCoding.decode([String].self, withBob.result ?? []) == ["pong 1"])
        await alice.stop()
        await bob.stop()
        await carol.stop()
    }

    @Test func aMessageDeliveredTwiceIsAppliedOnce() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let hooks = Hooks()
        let alice = try net.node("alice", "O=Alice", duplicating: true)
        let bob = try net.node("bob", "O=Bob", duplicating: true, hooks: hooks)
        try await net.started(alice, bob)
        let ended = try await alice.engine.waitForEnd(try await alice.engine.start(PingFlow(rounds: 4)).id)
        #expect(ended.status == .completed, "\(ended.error ?? "")")
        #expect(try FlowCoding.decode([String].self, ended.result ?? []) == ["pong 1", "pong 2", "pong 3", "pong 4"])
        try await eventually("Bob's responder completed") { try await bob.flows(named: "PongResponder").first?.status == .completed }
        // One responder for the twice-delivered initiate, and each ping answered once.
        #expect(try await bob.flows(named: "PongResponder").count == 1)
        #expect(hooks.calls("answer") == 4)
        await alice.stop()
        await bob.stop()
    }

    @Test func theReceiverRestartedMidSessionGoesOnWithoutLossOrDuplication() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let hooks = Hooks()
        try hooks.call("gated")
        let alice = try net.node("alice", "O=Alice")
        var bob = try net.node("bob", "O=Bob", hooks: hooks)
        try await net.started(alice, bob)
        let ping = try await alice.engine.start(PingFlow(rounds: 3))
        await hooks.gate.reached()  // Bob has answered once and holds the second ping
        await bob.stop()
        bob = try net.node("bob", "O=Bob", hooks: hooks)
        try await bob.start()
        await hooks.gate.reached()  // the responder replayed its journal to the same place
        hooks.gate.release()
        let ended = try await alice.engine.waitForEnd(ping.id)
        #expect(ended.status == .completed, "\(ended.error ?? "")")
        #expect(try FlowCoding.decode([String].self, ended.result ?? []) == ["pong 1", "pong 2", "pong 3"])
        try await eventually("Bob's responder completed") { try await bob.flows(named: "PongResponder").first?.status == .completed }
        #expect(try await bob.flows(named: "PongResponder").count == 1)
        #expect(hooks.calls("answer") == 3, "the first answer was replayed from the journal, not made again")
        await alice.stop()
        await bob.stop()
    }

    @Test func aPeerDownThenUpDrainsTheBacklogInOrderAcrossTheSendersRestart() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        var alice = try net.node("alice", "O=Alice")
        try await alice.start()
        // Bob's node is down: Alice's messages wait in her outbox (more than a batch of them).
        let stream = try await alice.engine.start(StreamFlow(count: 40))
        #expect(try await alice.engine.waitForEnd(stream.id).status == .completed)
        try await eventually("Alice's link failed to reach Bob") { alice.hub.link.failures(of: "O=Bob") > 0 }
        #expect(try await alice.outbox().count == 42, "initiate, 40 messages and close")
        // Alice's node restarts meanwhile: the backlog is in her database, not in memory.
        await alice.stop()
        alice = try net.node("alice", "O=Alice")
        try await alice.start()
        let bob = try net.node("bob", "O=Bob")
        try await bob.start()
        try await eventually("Bob's responder completed") { try await bob.flows(named: "CollectResponder").first?.status == .completed }
        let collected = try #require(try await bob.flows(named: "CollectResponder").first)
        #expect(try FlowCoding.decode([String].self, collected.result ?? []) == (1...40).map { "\($0)" })
        try await eventually("Alice's outbox drained") { try await alice.outbox().isEmpty }
        await alice.stop()
        await bob.stop()
    }

    @Test func aCounterpartysFailureEndsTheInitiatorsFlowWithItsError() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let alice = try net.node("alice", "O=Alice")
        let bob = try net.node("bob", "O=Bob")
        try await net.started(alice, bob)
        let ended = try await alice.engine.waitForEnd(try await alice.engine.start(AskFlow()).id)
        #expect(ended.status == .failed)
        #expect(ended.error == "counterparty_failed: the counterparty's flow failed: no answer for you")
        #expect(try await bob.flows(named: "FailingResponder").first?.status == .failed)
        await alice.stop()
        await bob.stop()
    }

    /// Both sides wait for each other. Alice's side times out first, and her flow's end tells
    /// Bob's responder, which then ends at once rather than at its own timeout (two minutes, more
    /// than the test waits).
    @Test(.timeLimit(.minutes(1))) func aSideThatTimesOutTellsItsCounterpartyWhenItsFlowEnds() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        var short = SessionNode.configuration
        short.timeout = .seconds(1)
        let alice = try net.node("alice", "O=Alice", configuration: short)
        let bob = try net.node("bob", "O=Bob")
        try await net.started(alice, bob)
        let ended = try await alice.engine.waitForEnd(try await alice.engine.start(StuckFlow()).id)
        #expect(ended.error?.hasPrefix("session_timeout: nothing came from O=Bob") == true, "\(ended.error ?? "")")
        try await eventually("Bob's responder ended") { try await bob.flows(named: "StuckResponder").first?.status == .failed }
        let responder = try #require(try await bob.flows(named: "StuckResponder").first)
        #expect(responder.error?.hasPrefix("session_timeout: O=Alice heard nothing from O=Bob") == true, "\(responder.error ?? "")")
        await alice.stop()
        await bob.stop()
    }

    @Test func aSessionThatHearsNothingWithinItsTimeoutEndsTheFlow() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let hooks = Hooks()
        try hooks.call("gatedFirst")
        var short = SessionNode.configuration
        short.timeout = .seconds(2)
        let alice = try net.node("alice", "O=Alice", configuration: short)
        let bob = try net.node("bob", "O=Bob", hooks: hooks)
        try await net.started(alice, bob)
        // Bob's responder is held before it answers, past Alice's timeout.
        let ended = try await alice.engine.waitForEnd(try await alice.engine.start(PingFlow(rounds: 1)).id)
        #expect(ended.status == .failed)
        #expect(ended.error?.hasPrefix("session_timeout: nothing came from O=Bob") == true, "\(ended.error ?? "")")
        await alice.stop()
        await bob.stop()
    }

    @Test func aSessionNoResponderAnswersEndsWithNoResponder() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let alice = try net.node("alice", "O=Alice")
        let bob = try net.node("bob", "O=Bob")
        try await net.started(alice, bob)
        let ended = try await alice.engine.waitForEnd(try await alice.engine.start(UnansweredFlow()).id)
        #expect(ended.status == .failed)
        #expect(ended.error?.hasPrefix("no_responder: O=Bob's node has no responder for UnansweredFlow version 1") == true,
                "\(ended.error ?? "")")
        await alice.stop()
        await bob.stop()
    }

    @Test func theInitiatorRestartedMidSessionTakesTheAnswerThatCameWhileItWasDown() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let hooks = Hooks()
        try hooks.call("gated")
        var alice = try net.node("alice", "O=Alice")
        let bob = try net.node("bob", "O=Bob", hooks: hooks)
        try await net.started(alice, bob)
        let ping = try await alice.engine.start(PingFlow(rounds: 2))
        await hooks.gate.reached()  // Alice waits for the second answer, which Bob holds
        await alice.stop()
        hooks.gate.release()
        // Bob answers while Alice's node is down: the answer waits in Bob's outbox.
        try await eventually("Bob failed to reach Alice") { bob.hub.link.failures(of: "O=Alice") > 0 }
        alice = try net.node("alice", "O=Alice")
        try await alice.start()
        let ended = try await alice.engine.waitForEnd(ping.id)
        #expect(ended.status == .completed, "\(ended.error ?? "")")
        #expect(try FlowCoding.decode([String].self, ended.result ?? []) == ["pong 1", "pong 2"])
        try await eventually("Bob's responder completed") { try await bob.flows(named: "PongResponder").first?.status == .completed }
        #expect(hooks.calls("answer") == 2)
        await alice.stop()
        await bob.stop()
    }

    @Test func aClosedSessionRefusesTheFlowAndEndsTheCounterpartysReceive() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let alice = try net.node("alice", "O=Alice")
        let bob = try net.node("bob", "O=Bob")
        try await net.started(alice, bob)
        let ended = try await alice.engine.waitForEnd(try await alice.engine.start(CloseEarlyFlow()).id)
        #expect(try FlowCoding.decode(String.self, ended.result ?? []) == "session_not_open")
        try await eventually("Bob's responder completed") { try await bob.flows(named: "CollectResponder").first?.status == .completed }
        let collected = try #require(try await bob.flows(named: "CollectResponder").first)
        #expect(try FlowCoding.decode([String].self, collected.result ?? []) == ["only"])
        await alice.stop()
        await bob.stop()
    }

    @Test func aFlowKilledByAnOperatorEndsItsCounterpartysFlow() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let hooks = Hooks()
        try hooks.call("gated")
        let alice = try net.node("alice", "O=Alice")
        let bob = try net.node("bob", "O=Bob", hooks: hooks)
        try await net.started(alice, bob)
        let ping = try await alice.engine.start(PingFlow(rounds: 3))
        await hooks.gate.reached()
        #expect(try await alice.engine.kill(ping.id).status == .killed)
        hooks.gate.release()
        // Bob answers the second ping, then takes Alice's error instead of a third.
        try await eventually("Bob's responder ended") { try await bob.flows(named: "PongResponder").first?.status == .failed }
        let pong = try #require(try await bob.flows(named: "PongResponder").first)
        #expect(pong.error == "counterparty_failed: the counterparty's flow was killed by an operator")
        await alice.stop()
        await bob.stop()
    }

    @Test(arguments: [UInt64(1), 2, 3]) func overALinkThatFailsLosesAndRepeatsEveryMessageIsTakenOnceInOrder(_ seed: UInt64) async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let hooks = Hooks()
        let alice = try net.node("alice", "O=Alice", flakySeed: seed)
        let bob = try net.node("bob", "O=Bob", flakySeed: seed &+ 100, hooks: hooks)
        try await net.started(alice, bob)
        let stream = try await alice.engine.start(StreamFlow(count: 30))
        let ping = try await alice.engine.start(PingFlow(rounds: 5))
        let pinged = try await alice.engine.waitForEnd(ping.id)
        #expect(try FlowCoding.decode([String].self, pinged.result ?? []) == (1...5).map { "pong \($0)" }, "\(pinged.error ?? "")")
        #expect(try await alice.engine.waitForEnd(stream.id).status == .completed)
        try await eventually("Bob's responders completed") {
            let ended = try await bob.engine.list(FlowQuery(status: .completed)).count
            return ended == 2
        }
        let collected = try #require(try await bob.flows(named: "CollectResponder").first)
        #expect(try FlowCoding.decode([String].self, collected.result ?? []) == (1...30).map { "\($0)" })
        #expect(hooks.calls("answer") == 5)
        #expect(try await bob.engine.list(FlowQuery()).count == 2, "one responder per session")
        await alice.stop()
        await bob.stop()
    }

    @Test func aClientCannotStartAResponder() async throws {
        let directory = try TemporaryDirectory()
        let net = Network(root: directory.path)
        let bob = try net.node("bob", "O=Bob")
        try await bob.start()
        let forged = try FlowCoding.encode(PongResponder(session: FlowSession(id: "someone-else/0", ourParty: "O=Bob", counterparty: "O=Alice",
                                                                                isInitiator: false)))
        await #expect(throws: FlowEngineError.unknownFlow("PongResponder")) {
            _ = try await bob.engine.start(flowName: "PongResponder", arguments: forged, clientRequestId: "someone-else/0")
        }
        // Nor take a session's responder id for any flow.
        await #expect(throws: FlowEngineError.invalidClientRequestId("begins with `session:`, which names the responders of flow sessions")) {
            _ = try await bob.engine.start(flowName: "PongResponder", arguments: forged, clientRequestId: "session:someone-else/0")
        }
        #expect(!bob.engine.registry.names.contains("PongResponder") && bob.engine.registry.names.contains("PingFlow"))
        #expect(try await bob.engine.list(FlowQuery()).isEmpty)
        await bob.stop()
    }
}
