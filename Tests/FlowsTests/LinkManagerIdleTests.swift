import Embedded
import Flows
import HawserCore
import HawserTestSupport
import Sessions
import Synchronization
import Testing

/// An idle link manager reads the outbox once per poll interval, not in a loop: before, the
/// first poll that outlasted its wait ended the wake stream, and every pause after returned at
/// once (idle nodes burned a core reading an empty outbox).
struct LinkManagerIdleTests {
    /// Counts the outbox reads of the store it wraps.
    final class CountingStore: SessionStore {
        let base: any SessionStore
        let reads = Atomic(0)
        init(_ base: any SessionStore) { self.base = base }
        func acceptInbound(_ messages: [InboxMessage]) async throws -> [Bool] { try await base.acceptInbound(messages) }
        func inbound(_ key: SessionMessageKey) async throws -> InboxMessage? { try await base.inbound(key) }
        func outbound(limit: Int, excluding: Set<String>) async throws -> [OutboxMessage] {
            reads.add(1, ordering: .relaxed)
            return try await base.outbound(limit: limit, excluding: excluding)
        }
        func acknowledge(_ messageIds: [String]) async throws { try await base.acknowledge(messageIds) }
    }

    @Test func anIdleLinkManagerReadsTheOutboxOncePerPoll() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let store = CountingStore(database.sessions)
        let hub = SessionHub(store: store, transport: InProcessNetwork(),
                             configuration: SessionConfiguration(pollInterval: .milliseconds(100)), logger: quietLogger)
        let running = Task { await hub.run() }
        // Past several polls whose sleep ended the pause, and a wake or two.
        try await eventually("the link manager polled a few times") { store.reads.load(ordering: .relaxed) >= 3 }
        hub.link.wake()
        let before = store.reads.load(ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(500))
        let during = store.reads.load(ordering: .relaxed) - before
        running.cancel()
        await running.value
        // About 5 polls in 500 ms (and the wake); a loop makes thousands.
        #expect(during <= 50, "\(during) outbox reads in 500 ms")
    }
}

/// A commit that writes only to recipients being delivered to does not read the outbox: the end
/// of that delivery reads it, and the new message goes then, without waiting for a poll.
struct LinkManagerBusyWakeTests {
    /// Holds each delivery until the test lets it through.
    final class GatedTransport: PeerTransport {
        let delivered = Mutex<[String]>([])
        let entered = AsyncStream<Void>.makeStream()
        let gate = AsyncStream<Void>.makeStream()
        func deliver(_ bodies: [[UInt8]], to recipient: String) async throws -> [DeliveryAnswer] {
            entered.continuation.yield()
            var gate = self.gate.stream.makeAsyncIterator()
            _ = await gate.next()
            let keys = try bodies.map { try SessionMessage.decode($0).key.description }
            delivered.withLock { $0 += keys }
            return bodies.map { _ in .accepted }
        }
    }

    static func message(_ sequence: Int) -> OutboxMessage {
        OutboxMessage(SessionMessage(session: "s", sender: "O=Alice", recipient: "O=Bob", sequence: sequence, kind: .data))
    }

    @Test func aWakeForARecipientBeingDeliveredToDoesNotReadTheOutbox() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let store = LinkManagerIdleTests.CountingStore(database.sessions)
        let transport = GatedTransport()
        // No poll within the test: only wakes make the link manager read.
        let hub = SessionHub(store: store, transport: transport, configuration: SessionConfiguration(pollInterval: .seconds(600)),
                             logger: quietLogger)
        let record = FlowRecord(id: FlowID("f"), clientRequestId: nil, flowName: "F", arguments: [],
                                createdAt: Instant(microsecondsSinceEpoch: 1), updatedAt: Instant(microsecondsSinceEpoch: 1))
        let entry = { (sequence: Int) in JournalEntry(sequence: sequence, kind: "send", descriptor: "", result: []) }
        _ = try await database.flows.commit([.start(record), .journal(record.id, entry(0), [.outbox(Self.message(1))])])
        let running = Task { await hub.run() }
        var entered = transport.entered.stream.makeAsyncIterator()
        _ = await entered.next()  // message 1 is being delivered: Bob is busy
        let before = store.reads.load(ordering: .relaxed)
        _ = try await database.flows.commit([.journal(record.id, entry(1), [.outbox(Self.message(2))])])
        for _ in 0..<20 { hub.outboxChanged(for: ["O=Bob"]) }
        // Nothing happens to be awaited: a read, had there been one, shows well within this.
        try await Task.sleep(for: .milliseconds(300))
        #expect(store.reads.load(ordering: .relaxed) == before)
        // A wake for a recipient not being delivered to reads at once.
        hub.outboxChanged(for: ["O=Charlie"])
        try await eventually("the wake for Charlie read the outbox") { store.reads.load(ordering: .relaxed) == before + 1 }
        transport.gate.continuation.yield()  // message 1 ends; its end reads message 2
        _ = await entered.next()
        transport.gate.continuation.yield()
        try await eventually("message 2 was delivered") { transport.delivered.withLock { $0.count } == 2 }
        running.cancel()
        await running.value
        #expect(transport.delivered.withLock { $0 } == [Self.message(1).messageId, Self.message(2).messageId])
    }
}
