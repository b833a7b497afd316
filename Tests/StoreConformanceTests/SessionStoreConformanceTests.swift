import Coordination
import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Sessions
import Testing

/// The session store on every back end: the inbox keeps each message key once, only while the
/// flow its session belongs to here runs, and drops the sessions of flows that have ended, and the outbox is read in batches, in order, past the
/// recipients put off, counted by recipient, and emptied by acknowledgements.
@Suite(PostgresTrait(ifAvailable: true), .timeLimit(.minutes(2)))
struct SessionStoreConformanceTests {
    func inbox(_ sequence: Int, _ body: [UInt8] = [1], session: String = "s") -> InboxMessage {
        InboxMessage(key: SessionMessageKey(session: session, sender: "O=Alice", sequence: sequence), body: body)
    }

    func outbox(_ id: String, to recipient: String) -> OutboxMessage {
        OutboxMessage(messageId: id, session: "s", recipient: recipient, payload: Array(id.utf8))
    }

    func start(_ id: String) -> FlowRecord {
        FlowRecord(id: FlowID(id), clientRequestId: nil, flowName: "F", arguments: Array("{}".utf8), attempts: 0,
                   createdAt: Instant(microsecondsSinceEpoch: 1), updatedAt: Instant(microsecondsSinceEpoch: 1))
    }

    /// The responder `id` of `session`, which Alice opened.
    func responder(_ id: String, of session: String) -> FlowRecord {
        var record = start(id)
        record.clientRequestId = SessionInbound.responderRequestId(session)
        return record
    }

    @Test(arguments: Backend.available) func theInboxKeepsAMessageDeliveredTwiceOnce(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let node = try await database.node()
            _ = try await node.flows.commit([.start(responder("r", of: "s")), .start(responder("q", of: "t"))])
            let sessions = node.sessions
            #expect(try await sessions.inbound(inbox(1).key) == nil)
            #expect(try await sessions.acceptInbound(inbox(1)))
            #expect(try await !sessions.acceptInbound(inbox(1, [9])), "the second delivery changes nothing")
            #expect(try await sessions.inbound(inbox(1).key) == inbox(1))
            #expect(try await sessions.acceptInbound(inbox(2, [2])))
            #expect(try await sessions.acceptInbound(inbox(1, session: "t")), "another session's message 1 is another key")
            #expect(try await sessions.inbound(inbox(2).key) == inbox(2, [2]))
            // Another process on the same database sees what was accepted.
            #expect(try await database.node().sessions.inbound(inbox(1, session: "t").key) == inbox(1, session: "t"))
        }
    }

    @Test(arguments: Backend.available) func theInboxOfAFlowThatHasEndedIsPrunedAndNotWrittenAgain(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let node = try await database.node()
            // "a" opened session a/0 here; "r" is the responder of session b/1, which Bob opened.
            _ = try await node.flows.commit([.start(start("a")), .start(responder("r", of: "b/1")), .start(start("h"))])
            let mine = inbox(1, session: "a/0"), theirs = [inbox(1, session: "b/1"), inbox(2, session: "b/1")]
            let unknown = inbox(1, session: "c/0"), waiting = inbox(1, session: "h/0")
            #expect(try await node.sessions.acceptInbound([mine] + theirs + [unknown, waiting]) == [true, true, true, false, true],
                    "a session no flow here has is not kept")
            #expect(try await node.sessions.pruneInbox(limit: 10) == 0, "every flow runs")
            func end(_ id: String, _ status: FlowStatus) async throws {
                _ = try await node.flows.commit([.state(FlowID(id), FlowState(status: status, attempts: 0,
                                                                              updatedAt: Instant(microsecondsSinceEpoch: 2)), [])])
            }
            try await end("a", .completed)
            try await end("h", .hospitalised)
            #expect(try await node.sessions.pruneInbox(limit: 10) == 1)
            #expect(try await node.sessions.inbound(mine.key) == nil)
            #expect(try await node.sessions.acceptInbound([inbox(2, session: "a/0"), inbox(3, session: "b/1")]) == [false, true],
                    "a message for an ended flow is not kept")
            #expect(try await node.sessions.inbound(inbox(2, session: "a/0").key) == nil)
            try await end("r", .failed)
            #expect(try await node.sessions.pruneInbox(limit: 2) == 2, "at most the limit")
            #expect(try await node.sessions.pruneInbox(limit: 10) == 1)
            #expect(try await node.sessions.pruneInbox(limit: 10) == 0)
            #expect(try await node.sessions.acceptInbound(theirs) == [false, false])
            // That of a flow in the hospital is kept.
            #expect(try await node.sessions.inbound(unknown.key) == nil)
            #expect(try await node.sessions.inbound(waiting.key) == waiting)
        }
    }

    /// Two parties of one node in a session: the initiator and the responder both run here, and
    /// the responder's last message waits in the inbox for the initiator after the responder has
    /// ended. It is pruned only once neither runs (pruning it with the responder's end left the
    /// initiator waiting out its session timeout for an answer already received).
    @Test(arguments: Backend.available) func aSessionBetweenTwoPartiesOfTheNodeIsPrunedOnlyOnceBothFlowsEnd(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let node = try await database.node()
            _ = try await node.flows.commit([.start(start("i")), .start(responder("k", of: "i/0"))])
            let answer = inbox(2, session: "i/0")
            #expect(try await node.sessions.acceptInbound([inbox(1, session: "i/0"), answer]) == [true, true])
            func end(_ id: String) async throws {
                _ = try await node.flows.commit([.state(FlowID(id), FlowState(status: .completed, attempts: 0,
                                                                              updatedAt: Instant(microsecondsSinceEpoch: 2)), [])])
            }
            try await end("k")
            #expect(try await node.sessions.pruneInbox(limit: 10) == 0, "the initiator still runs")
            #expect(try await node.sessions.inbound(answer.key) == answer)
            try await end("i")
            #expect(try await node.sessions.pruneInbox(limit: 10) == 2)
        }
    }

    @Test(arguments: Backend.available) func theOutboxIsReadInOrderPastPeersPutOffAndEmptiedByAcknowledgements(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let node = try await database.node()
            let messages = [outbox("1", to: "O=Bob"), outbox("2", to: "O=Carol"), outbox("3", to: "O=Bob"), outbox("4", to: "O=Dan")]
            _ = try await node.flows.commit([.start(start("a")),
                                             .journal(FlowID("a"), JournalEntry(sequence: 0, kind: "send", descriptor: "", result: []),
                                                      messages.map(LocalEffect.outbox))])
            #expect(try await node.sessions.outbound(limit: 10, excluding: []) == messages)
            #expect(try await node.sessions.outbound(limit: 2, excluding: []) == Array(messages.prefix(2)))
            #expect(try await node.sessions.outbound(limit: 10, excluding: ["O=Bob", "O=Dan"]) == [messages[1]])
            #expect(try await node.sessions.outboxBacklog() == ["O=Bob": 2, "O=Carol": 1, "O=Dan": 1])
            try await node.sessions.acknowledge(["1"])
            try await node.sessions.acknowledge(["1", "4"])
            try await node.sessions.acknowledge([])
            #expect(try await node.sessions.outbound(limit: 10, excluding: []) == [messages[1], messages[2]])
            #expect(try await node.sessions.outboxBacklog() == ["O=Bob": 1, "O=Carol": 1])
        }
    }

    @Test(arguments: Backend.available) func aDeposedNodeNeitherAcceptsNorAcknowledges(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let oldFence = WriteFence(resource: "node/0"), newFence = WriteFence(resource: "node/0")
            let old = try await database.node(fence: oldFence)
            let new = try await database.node(fence: newFence)
            oldFence.hold(Epoch(1))
            _ = try await old.flows.commit([.start(start("a")), .start(responder("r", of: "s")),
                                            .journal(FlowID("a"), JournalEntry(sequence: 0, kind: "send", descriptor: "", result: []),
                                                     [.outbox(outbox("1", to: "O=Bob"))])])
            newFence.hold(Epoch(2))
            #expect(try await new.sessions.acceptInbound(inbox(1)))
            await #expect(throws: (any Error).self) { _ = try await old.sessions.acceptInbound(inbox(2)) }
            await #expect(throws: (any Error).self) { try await old.sessions.acknowledge(["1"]) }
            await #expect(throws: (any Error).self) { _ = try await old.sessions.pruneInbox(limit: 10) }
            #expect(try await new.sessions.inbound(inbox(2).key) == nil)
            #expect(try await new.sessions.outbound(limit: 10, excluding: []).map(\.messageId) == ["1"])
        }
    }
}
