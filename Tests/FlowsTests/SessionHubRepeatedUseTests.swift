import Embedded
import Flows
import HawserTestSupport
import Sessions
import Synchronization
import Testing

/// A hub is used for as long as its node runs: what it does for the millionth delivery costs what
/// it did for the first. Before, the closures it keeps in a `Mutex` grew by two reabstraction
/// thunks at each read, so each call got slower and, after about 130,000 of them, one overflowed
/// the stack and crashed the node (without the fix these tests crash, or outrun their time limit).
@Suite(.timeLimit(.minutes(2)))
struct SessionHubRepeatedUseTests {
    static let calls = 300_000

    @Test func deliveriesToAHubWithoutAnEngineAreRefusedAtTheSameCostEveryTime() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let hub = SessionHub(store: database.sessions, transport: InProcessNetwork(), logger: quietLogger)
        let asked = Atomic(0)
        hub.attach { asked.add(1, ordering: .relaxed); return nil }
        let message = try ArrivedMessage(body: SessionMessage(session: "s", sender: "O=Alice, L=London, C=GB",
                                                              recipient: "O=Bob, L=London, C=GB", sequence: 2, kind: .data).encoded())
        var refused = 0
        for _ in 0..<Self.calls {
            do { _ = try await hub.accept([message]) } catch is PeerUnreachable { refused += 1 }
        }
        #expect(refused == Self.calls)
        #expect(asked.load(ordering: .relaxed) == Self.calls)
    }

    @Test func aHubTellsItsListenerAtTheSameCostEveryTime() throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        // Another process delivers the outbox, so each write is told to the listener.
        let hub = SessionHub(store: database.sessions, transport: InProcessNetwork(), logger: quietLogger, delivers: { false })
        let told = Atomic(0)
        hub.announce { news in if news == .outboxWritten { told.add(1, ordering: .relaxed) } }
        for _ in 0..<Self.calls { hub.outboxChanged(for: ["O=Bob, L=London, C=GB"]) }
        #expect(told.load(ordering: .relaxed) == Self.calls)
    }
}
