import Embedded
import Flows
import HawserCore
import HawserTestSupport
import Sessions
import Synchronization
import Testing

/// A commit that writes only to recipients being delivered to does not read the outbox: the end
/// of that delivery reads it, and the new message goes then, without waiting for a poll.
@Suite(.timeLimit(.minutes(10)))
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
