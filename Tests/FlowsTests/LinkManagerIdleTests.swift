import Embedded
import Flows
import HawserTestSupport
import Sessions
import Synchronization
import Testing

/// An idle link manager reads the outbox once per poll interval, not in a loop: before, the
/// first poll that outlasted its wait ended the wake stream, and every pause after returned at
/// once (idle nodes burned a core reading an empty outbox).
@Suite(.timeLimit(.minutes(10)))
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
        func outboxBacklog() async throws -> [String: Int] { try await base.outboxBacklog() }
        func pruneInbox(limit: Int) async throws -> Int { try await base.pruneInbox(limit: limit) }
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
