import Embedded
import Flows
import HawserTestSupport
import HawserWire
@testable import HawserNode
import Sessions
import Testing

/// The bus's events (proto/hawser_bus.proto): what one process writes another reads, and a
/// process refuses, with a sentence that says why, an event of a schema it does not know (a newer
/// process's in a rolling upgrade), a kind of event its schema does not name, and bytes that are
/// not an event.
struct BusEventsTests {
    @Test func eventsRoundTrip() throws {
        let keys = [SessionMessageKey(session: "s-1", sender: "O=Alice, L=London, C=GB", sequence: 3),
                    SessionMessageKey(session: "s-2", sender: "O=Bob, L=London, C=GB", sequence: 1)]
        for news in [BusNews.session(.inboxWritten(keys)), .session(.outboxWritten), .startsQueued([FlowID("f-1")]),
                     .flowsSettled([FlowID("f-1"), FlowID("f-2")])] {
            let (sender, decoded) = try BusEvents.decode(BusEvents.encode(news, sender: "A"))
            #expect(sender == "A" && decoded == news)
        }
    }

    @Test func aSchemaAKindOrBytesThisProcessDoesNotKnowAreRefused() throws {
        var newer = Hawser_Bus_V1_BusEvent()
        newer.schema = 2
        newer.sender = "B"
        newer.outboxWritten = Hawser_Bus_V1_OutboxWritten()
        #expect(throws: BusEvents.Refusal("it is of schema 2, and this process knows schema 1 only")) {
            try BusEvents.decode(try newer.serializedBytes())
        }
        // Schema 1 with field 9 (a kind of event not in this schema): no event this process knows.
        #expect(throws: BusEvents.Refusal("it names no event this process knows")) {
            try BusEvents.decode([0x08, 0x01, 0x12, 0x01, 0x42, 0x4A, 0x00])
        }
        #expect(throws: BusEvents.Refusal.self) { try BusEvents.decode([0xFF, 0xFF, 0xFF]) }
    }

    /// Events are not authenticated: whoever can publish on the subject made every process read
    /// 25,000 made-up flows an event, and keep them all until read (found from outside: workers
    /// grew to 2.7 GB under a flood and gave their partitions up). An event names at most 1,000,
    /// and a process keeps at most 1,000 named starts; more are left to its scan of the queue.
    @Test func anEventNamingTooManyIsRefusedAndNamedStartsAreBounded() async throws {
        let most = (0..<BusEvents.maxNamed).map { FlowID("f-\($0)") }
        #expect(try BusEvents.decode(BusEvents.encode(.startsQueued(most), sender: "A")).news == .startsQueued(most))
        for news in [BusNews.startsQueued(most + [FlowID("x")]), .flowsSettled(most + [FlowID("x")]),
                     .session(.inboxWritten((0...BusEvents.maxNamed).map { SessionMessageKey(session: "s", sender: "O=A", sequence: $0) }))] {
            #expect(throws: BusEvents.Refusal("it names more than 1000 flows or messages")) {
                try BusEvents.decode(BusEvents.encode(news, sender: "A"))
            }
        }
        let dir = try TemporaryDirectory()
        let starts = QueuedStarts(store: try SQLiteNodeDatabase(path: dir.path + "/node.sqlite").flows,
                                  engines: FlowEngines(partitions: FlowPartitions(count: 1)), fences: [], interval: .seconds(1),
                                  logger: quietLogger)
        for _ in 0..<5 { starts.ring(most) }
        #expect(starts.namedWaiting == QueuedStarts.maxNamed)
    }
}
