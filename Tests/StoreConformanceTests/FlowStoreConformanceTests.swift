import Coordination
import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Testing
import Vault

/// The flow store on every back end: group commits, client request ids, the journal, compaction,
/// replay markers, asks of the notary, the outbox and the queries.
@Suite(PostgresTrait(ifAvailable: true), .timeLimit(.minutes(2)))
struct FlowStoreConformanceTests {
    func record(_ id: String, clientRequestId: String? = nil, name: String = "F", at micros: Int64 = 1) -> FlowRecord {
        FlowRecord(id: FlowID(id), clientRequestId: clientRequestId, flowName: name, arguments: Array("{}".utf8), attempts: 0,
                   createdAt: Instant(microsecondsSinceEpoch: micros), updatedAt: Instant(microsecondsSinceEpoch: micros))
    }

    func entry(_ sequence: Int, kind: String = EffectKind.record) -> JournalEntry {
        JournalEntry(sequence: sequence, kind: kind, descriptor: "step \(sequence)", result: [UInt8(sequence), 0, 255])
    }

    @Test(arguments: Backend.available) func aGroupCommitStoresEveryWriteInOrder(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            let result = try await flows.commit([
                .start(record("a", clientRequestId: "c-a")), .journal(FlowID("a"), entry(0), []),
                .start(record("b")), .journal(FlowID("a"), entry(1, kind: EffectKind.progress), []),
                .state(FlowID("a"), FlowState(status: .completed, result: Array("7".utf8), attempts: 2,
                                              updatedAt: Instant(microsecondsSinceEpoch: 9)), []),
            ])
            #expect(result == [record("a", clientRequestId: "c-a"), nil, record("b"), nil, nil])
            let stored = try #require(try await flows.record(FlowID("a")))
            #expect(stored.status == .completed && stored.result == Array("7".utf8) && stored.attempts == 2)
            #expect(stored.updatedAt == Instant(microsecondsSinceEpoch: 9) && stored.createdAt == Instant(microsecondsSinceEpoch: 1))
            #expect(try await flows.record(clientRequestId: "c-a")?.id == FlowID("a"))
            #expect(try await flows.journal(of: FlowID("a")) == [entry(0), entry(1, kind: EffectKind.progress)])
            #expect(try await flows.counts() == [.completed: 1, .running: 1])
        }
    }

    /// A hot-hot process's shared commit proves the fence of every partition it carries: when one
    /// has moved on (a newer owner claimed it), nothing of the transaction is written.
    @Test(arguments: Backend.available) func aCommitProvingSeveralFencesIsRefusedWholeWhenOneMovedOn(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            let both = [CommitFence(resource: "node/p0", epoch: 1), CommitFence(resource: "node/p1", epoch: 1)]
            _ = try await flows.commit([], proving: both)  // each fence at epoch 1
            _ = try await flows.commit([], proving: [CommitFence(resource: "node/p1", epoch: 2)])  // p1's newer owner
            await #expect(throws: CoordinationError.self) { _ = try await flows.commit([.start(record("x"))], proving: both) }
            #expect(try await flows.record(FlowID("x")) == nil)
            _ = try await flows.commit([.start(record("y"))], proving: [both[0], CommitFence(resource: "node/p1", epoch: 2)])
            #expect(try await flows.record(FlowID("y")) != nil)
        }
    }

    @Test(arguments: Backend.available) func aStartWithAUsedClientRequestIdReturnsTheFirstAndWritesNothingOfItsFlow(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            _ = try await flows.commit([.start(record("a", clientRequestId: "c-1"))])
            let result = try await flows.commit([
                .start(record("b", clientRequestId: "c-1")), .journal(FlowID("b"), entry(0), []),
                .state(FlowID("b"), FlowState(status: .failed, attempts: 0, updatedAt: Instant(microsecondsSinceEpoch: 2)), []),
                .start(record("c", clientRequestId: "c-2")), .start(record("d", clientRequestId: "c-2")),
            ])
            #expect(result == [record("a", clientRequestId: "c-1"), nil, nil, record("c", clientRequestId: "c-2"),
                               record("c", clientRequestId: "c-2")])
            #expect(try await flows.record(FlowID("b")) == nil)
            #expect(try await flows.record(FlowID("d")) == nil)
            #expect(try await flows.journal(of: FlowID("b")).isEmpty)
            #expect(try await flows.record(FlowID("a"))?.status == .running)
        }
    }

    @Test(arguments: Backend.available) func theLocalEffectsOfARefusedStartsFlowAreLeftOutAndOthersApplyInOrder(_ backend: Backend) async throws {
        var ids = Ids(seed: 11)
        try await StoreDatabase.with(backend) { database in
            let stores = try await database.node()
            func token(_ ref: StateRef) -> VaultState { VaultState(ref: ref, type: "token", owner: "O=Alice", data: Array("{}".utf8), amount: 1) }
            let (x, y, z, w) = (ids.ref(), ids.ref(), ids.ref(), ids.ref())
            let kept = OutboxMessage(messageId: "c/1", session: "s", recipient: "O=Bob", payload: [3])
            let dropped = OutboxMessage(messageId: "b/1", session: "s", recipient: "O=Bob", payload: [4])
            _ = try await stores.flows.commit([.start(record("a", clientRequestId: "c-1")),
                                               .journal(FlowID("a"), entry(0), [.vault(VaultUpdate(txId: x.txId, consumed: [], produced: [token(x), token(y)]))])])
            try await stores.vault.reserve([y], for: "h")
            let (byB, byC, byCAgain) = (ids.hash(), ids.hash(), ids.hash())
            let result = try await stores.flows.commit([
                // b's start finds c-1 taken: nothing of b is written, its effects included.
                .start(record("b", clientRequestId: "c-1")),
                .journal(FlowID("b"), entry(0), [.vault(VaultUpdate(txId: byB, consumed: [x], produced: [token(z)])), .outbox(dropped)]),
                .state(FlowID("b"), FlowState(status: .completed, attempts: 0, updatedAt: Instant(microsecondsSinceEpoch: 2)),
                       [.releaseSoftLocks(holder: "h")]),
                .start(record("c")),
                .journal(FlowID("c"), entry(0), [.vault(VaultUpdate(txId: byC, consumed: [x], produced: [token(w)])), .outbox(kept)]),
                .journal(FlowID("c"), entry(1), [.vault(VaultUpdate(txId: byCAgain, consumed: [x], produced: []))]),
            ])
            #expect(result == [record("a", clientRequestId: "c-1"), nil, nil, record("c"), nil, nil])
            let vault = try await stores.vault.query(VaultQuery(consumption: .all))
            #expect(vault.map(\.ref) == [x, y, w])
            // The first consumption of x that is written wins; y keeps its soft lock.
            #expect(vault.first?.consumedBy == byC)
            #expect(vault.dropFirst().first?.lockedBy == "h")
            #expect(try await stores.sessions.outbound(limit: 10, excluding: []) == [kept])
            #expect(try await stores.flows.journal(of: FlowID("b")).isEmpty)
            #expect(try await stores.flows.journal(of: FlowID("c")).count == 2)
        }
    }

    /// Refused as `FlowWriteRefused`, which tells the group committer to commit the other flows' writes without it.
    @Test(arguments: Backend.available) func aJournalSequenceWrittenTwiceRefusesTheWholeCommit(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            _ = try await flows.commit([.start(record("a")), .journal(FlowID("a"), entry(0), [])])
            await #expect(throws: FlowWriteRefused.self) {
                _ = try await flows.commit([.start(record("b")), .journal(FlowID("a"), entry(1), []), .journal(FlowID("a"), entry(0), [])])
            }
            #expect(try await flows.record(FlowID("b")) == nil)
            #expect(try await flows.journal(of: FlowID("a")) == [entry(0)])
            // The store goes on working after the refusal.
            _ = try await flows.commit([.journal(FlowID("a"), entry(1), [])])
            #expect(try await flows.journal(of: FlowID("a")).count == 2)
        }
    }

    @Test(arguments: Backend.available) func compactionKeepsOnlyProgressAndMarkersComeAndGo(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            _ = try await flows.commit([
                .start(record("a")), .journal(FlowID("a"), entry(0), []), .journal(FlowID("a"), entry(1, kind: EffectKind.progress), []),
                .journal(FlowID("a"), entry(2), []), .replayMarker(FlowID("a"), true), .replayMarker(FlowID("b"), true),
                .replayMarker(FlowID("b"), true), .compact(FlowID("a")), .journal(FlowID("a"), entry(3), []),
            ])
            // In order: the entry written after the compaction stays.
            #expect(try await flows.journal(of: FlowID("a")) == [entry(1, kind: EffectKind.progress), entry(3)])
            #expect(try await flows.replayMarkers() == [FlowID("a"), FlowID("b")])
            _ = try await flows.commit([.replayMarker(FlowID("a"), false), .replayMarker(FlowID("c"), false)])
            #expect(try await flows.replayMarkers() == [FlowID("b")])
            try await flows.clearReplayMarkers([FlowID("b"), FlowID("c")])
            #expect(try await flows.replayMarkers().isEmpty)
        }
    }

    @Test(arguments: Backend.available) func anAskOfTheNotaryIsRecordedOnceAndGoesWhenTheFlowIsCompacted(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            _ = try await flows.commit([
                .start(record("a", clientRequestId: "k")), .journal(FlowID("a"), entry(0), []), .notaryAsked(FlowID("a")),
                .notaryAsked(FlowID("a")), .start(record("b")),
                // A start refused (its client request id names "a"): its ask is not written either.
                .start(record("c", clientRequestId: "k")), .notaryAsked(FlowID("c")),
            ])
            #expect(try await flows.hasAskedNotary(FlowID("a")))
            #expect(try await !flows.hasAskedNotary(FlowID("b")))
            #expect(try await !flows.hasAskedNotary(FlowID("c")))
            _ = try await flows.commit([.notaryAsked(FlowID("b")), .journal(FlowID("a"), entry(1), []),
                                        .state(FlowID("a"), FlowState(status: .completed, attempts: 0, updatedAt: Instant(microsecondsSinceEpoch: 2)), []),
                                        .compact(FlowID("a"))])
            #expect(try await !flows.hasAskedNotary(FlowID("a")))
            #expect(try await flows.hasAskedNotary(FlowID("b")))
        }
    }

    @Test(arguments: Backend.available) func outgoingMessagesAreKeptOnceInOrder(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            let first = OutboxMessage(messageId: "a/1", session: "s", recipient: "O=Bob", payload: [1, 2])
            let second = OutboxMessage(messageId: "a/2", session: "s", recipient: "O=Carol", payload: [])
            _ = try await flows.commit([.start(record("a")), .journal(FlowID("a"), entry(1), [.outbox(first)])])
            _ = try await flows.commit([.journal(FlowID("a"), entry(2), [.outbox(second), .outbox(first)])])
            #expect(try await database.node().sessions.outbound(limit: 10, excluding: []) == [first, second])
        }
    }

    @Test(arguments: Backend.available) func listingFiltersAndPagesInCreationOrder(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            let hospitalised = FlowState(status: .hospitalised, error: "x", attempts: 1, retryAt: Instant(microsecondsSinceEpoch: 50),
                                         updatedAt: Instant(microsecondsSinceEpoch: 6))
            let parked = FlowState(status: .hospitalised, error: "y", attempts: 3, updatedAt: Instant(microsecondsSinceEpoch: 7))
            _ = try await flows.commit([
                .start(record("a", at: 10)), .start(record("b", name: "G", at: 20)), .start(record("c", clientRequestId: "c-c", at: 30)),
                .start(record("d", at: 40)), .start(record("e", at: 50)),
                .state(FlowID("b"), hospitalised, []), .state(FlowID("c"), parked, []),
                .state(FlowID("d"), FlowState(status: .completed, attempts: 0, updatedAt: Instant(microsecondsSinceEpoch: 8)), []),
            ])
            func ids(_ query: FlowQuery) async throws -> [String] { try await flows.list(query).map(\.id.rawValue) }
            #expect(try await ids(FlowQuery(limit: 10)) == ["a", "b", "c", "d", "e"])
            #expect(try await ids(FlowQuery(limit: 2)) == ["a", "b"])
            #expect(try await ids(FlowQuery(after: FlowID("b"), limit: 2)) == ["c", "d"])
            #expect(try await ids(FlowQuery(status: .hospitalised, limit: 10)) == ["b", "c"])
            #expect(try await ids(FlowQuery(flowName: "G", limit: 10)) == ["b"])
            var unfinished = FlowQuery(after: FlowID("a"), limit: 10)
            unfinished.unfinished = true
            #expect(try await ids(unfinished) == ["b", "c", "e"], "running or in the hospital, parked or not; not ended")
            #expect(try await ids(FlowQuery(clientRequestId: "c-c", limit: 10)) == ["c"])
            #expect(try await ids(FlowQuery(since: Instant(microsecondsSinceEpoch: 20), until: Instant(microsecondsSinceEpoch: 40), limit: 10)) == ["b", "c"])
            // Running flows and those the hospital will retry; not the parked or the ended.
            #expect(try await flows.resumable().map(\.id.rawValue) == ["a", "b", "e"])
            #expect(try await flows.record(FlowID("b"))?.retryAt == Instant(microsecondsSinceEpoch: 50))
            #expect(try await flows.record(FlowID("c"))?.error == "y")
        }
    }

    /// Processes of a hot-hot node starting at once all propose the partition count: each must
    /// hear the one recorded. On PostgreSQL a proposal that lost the race used to hear nothing
    /// (its statement's snapshot predated the winner's insert), and its process refused to start.
    /// An RPC worker's starts (docs/node.md "Roles"): the flow and its queue row in one
    /// transaction, none for a used client request id; read per partition, oldest first; removed
    /// only under the fences of their partitions' owners, all of which the database must still hold.
    @Test(arguments: Backend.available) func queuedStartsAreReadByPartitionAndRemovedOnlyUnderTheOwnersFences(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            func enqueue(_ start: FlowRecord, partition: Int) async throws -> FlowRecord {
                let stored = try await flows.enqueue([QueuedStart(start, partition: partition)])
                #expect(stored.count == 1)
                return stored[0]
            }
            #expect(try await enqueue(record("a", clientRequestId: "c-a"), partition: 1) == record("a", clientRequestId: "c-a"))
            #expect(try await enqueue(record("b"), partition: 2) == record("b"))
            #expect(try await enqueue(record("c"), partition: 1) == record("c"))
            // The client request id names "a": that flow is the answer, and nothing is queued.
            #expect(try await enqueue(record("d", clientRequestId: "c-a"), partition: 2) == record("a", clientRequestId: "c-a"))
            #expect(try await flows.record(FlowID("d")) == nil)
            #expect(try await flows.record(FlowID("a"))?.status == .running)
            #expect(try await flows.queued(in: [1], limit: 10).map(\.id) == [FlowID("a"), FlowID("c")])
            #expect(try await flows.queued(in: [1, 2], limit: 2).map(\.id) == [FlowID("a"), FlowID("b")])
            #expect(try await flows.queued(in: [], limit: 10).map(\.id).isEmpty)
            // By ids: those still queued, oldest first ("d" was never queued).
            #expect(try await flows.queued([FlowID("c"), FlowID("d"), FlowID("a")]).map(\.id) == [FlowID("a"), FlowID("c")])
            #expect(try await flows.queued([]).isEmpty)

            // Removed under the fences of the partitions they are in: all, or (one moved on) none.
            let p1 = CommitFence(resource: "node/p1", epoch: 1)
            try await flows.dequeue([FlowID("a")], proving: [p1])
            #expect(try await flows.queued(in: [1, 2], limit: 10).map(\.id) == [FlowID("b"), FlowID("c")])
            #expect(try await flows.queued([FlowID("a"), FlowID("c")]).map(\.id) == [FlowID("c")])
            _ = try await flows.commit([], proving: [CommitFence(resource: "node/p1", epoch: 2)])  // p1's newer owner
            await #expect(throws: CoordinationError.staleEpoch(resource: "node/p1", presented: Epoch(1), current: Epoch(2))) {
                try await flows.dequeue([FlowID("b"), FlowID("c")], proving: [CommitFence(resource: "node/p2", epoch: 1), p1])
            }
            #expect(try await flows.queued(in: [1, 2], limit: 10).map(\.id) == [FlowID("b"), FlowID("c")])

            // Several starts in one transaction, each answered in order: new ones, two with one
            // client request id (the second gets the first's flow), one whose id names "a". Only
            // the new flows are queued, in the batch's order.
            let batch = [QueuedStart(record("e"), partition: 2), QueuedStart(record("f", clientRequestId: "c-f"), partition: 1),
                         QueuedStart(record("g", clientRequestId: "c-f"), partition: 2), QueuedStart(record("h", clientRequestId: "c-a"), partition: 1),
                         QueuedStart(record("i"), partition: 1)]
            #expect(try await flows.enqueue(batch).map(\.id) == [FlowID("e"), FlowID("f"), FlowID("f"), FlowID("a"), FlowID("i")])
            #expect(try await flows.record(FlowID("g")) == nil)
            #expect(try await flows.record(FlowID("h")) == nil)
            #expect(try await flows.queued(in: [1, 2], limit: 10).map(\.id) == [FlowID("b"), FlowID("c"), FlowID("e"), FlowID("f"), FlowID("i")])
            #expect(try await flows.enqueue([]).isEmpty)
        }
    }

    /// The run-time settings are read in one query by the prefix of their names; a name that only
    /// contains the prefix, or a `%` or `_` a pattern would take for a wildcard, is not among them.
    @Test(arguments: Backend.available) func settingsAreReadByThePrefixOfTheirNames(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            for (name, value) in [("config/log.level", "debug"), ("config/x", "1"), ("partitions", "4"), ("not-config/y", "2"), ("configxz", "3")] {
                try await flows.setSetting(name, to: value)
            }
            #expect(try await flows.settings(prefix: "config/") == ["config/log.level": "debug", "config/x": "1"])
            #expect(try await flows.settings(prefix: "conf%").isEmpty)
            #expect(try await flows.settings(prefix: "config_").isEmpty)
            try await flows.setSetting("config/x", to: nil)
            #expect(try await flows.settings(prefix: "config/") == ["config/log.level": "debug"])
        }
    }

    @Test(arguments: Backend.available) func proposalsAtOnceAllHearTheOneRecorded(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let flows = try await database.node().flows
            for round in 0..<20 {
                let heard = try await withThrowingTaskGroup(of: String?.self) { group in
                    for i in 0..<8 { group.addTask { try await flows.setting("race-\(round)", proposing: "v\(i)") } }
                    return try await group.reduce(into: [String?]()) { $0.append($1) }
                }
                let recorded = try await flows.setting("race-\(round)", proposing: nil)
                #expect(recorded != nil && heard.allSatisfy { $0 == recorded }, "round \(round): \(heard), recorded \(recorded ?? "nil")")
            }
        }
    }
}
