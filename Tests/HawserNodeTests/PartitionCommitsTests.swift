import Coordination
import Embedded
import Flows
import HawserCore
@testable import HawserNode
import HawserTestSupport
import Logging
import Synchronization
import Testing

/// The partitions of a hot-hot process commit together, each batch proving its own partition's
/// fence: a batch whose partition has a newer owner, or whose fence is released, fails alone;
/// the others in its transaction commit.
@Suite struct PartitionCommitsTests {
    func start(_ id: FlowID) -> FlowWrite {
        let now = Instant(microsecondsSinceEpoch: 1)
        return .start(FlowRecord(id: id, clientRequestId: nil, flowName: "F", arguments: [], attempts: 0, createdAt: now, updatedAt: now))
    }

    @Test func aStaleOrReleasedPartitionFailsAloneAndTheOthersCommit() async throws {
        let dir = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: dir.path + "/node.sqlite")
        let map = FlowPartitions(count: 3)
        let fences = (0..<3).map { WriteFence(resource: "node/p\($0)", epoch: Epoch(1)) }
        let commits = PartitionCommits(maxWritesPerCommit: 1_000, commit: database.flows.commit(_:proving:))
        for fence in fences { _ = try await commits.commit([], fencedBy: fence) }  // each claims epoch 1
        // Partition 1 has a newer owner; partition 2's fence is released.
        _ = try await database.flows.commit([], proving: [CommitFence(resource: "node/p1", epoch: 2)])
        fences[2].release()

        let results = await withTaskGroup(of: (Int, Bool, Error?).self) { group in
            for i in 0..<90 {
                let partition = i % 3
                group.addTask {
                    do {
                        _ = try await commits.commit([start(map.newID(in: partition))], fencedBy: fences[partition])
                        return (partition, true, nil)
                    } catch {
                        return (partition, false, error)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let committed = results.filter { $0.0 == 0 }.allSatisfy { $0.1 }
        #expect(committed, "partition 0's batches all commit")
        #expect(results.filter { $0.0 == 1 }.allSatisfy { !$0.1 && ($0.2 as? CoordinationError).map { if case .staleEpoch = $0 { true } else { false } } == true })
        #expect(results.filter { $0.0 == 2 }.allSatisfy { !$0.1 && ($0.2 as? CoordinationError) == .notOwner(resource: "node/p2") })
        let stored = try await database.flows.list(FlowQuery(limit: 1_000))
        #expect(stored.count == 30 && stored.allSatisfy { map.partition(of: $0.id) == 0 })
    }

    /// A transaction that fails for no batch's fault (the database unreachable) fails every batch
    /// in it at once: trying each again alone would wait out the same failure once per flow.
    struct DatabaseDown: Error {}

    @Test func aDatabaseFailureFailsEveryBatchOnceWithoutTryingEachAgain() async throws {
        let tried = Mutex(0)  // writes sent to the database
        let queue = Mutex<PartitionCommits?>(nil)
        let commits = PartitionCommits(maxWritesPerCommit: 1_000) { writes, _ in
            // Each transaction waits until every flow's write is in it or queued behind it, so
            // that some transaction carries several.
            while writes.count + (queue.withLock { $0 }?.waiting ?? 0) < 20, tried.withLock({ $0 }) == 0 {
                try await Task.sleep(for: .milliseconds(1))
            }
            tried.withLock { $0 += writes.count }
            throw DatabaseDown()
        }
        queue.withLock { $0 = commits }
        let fence = WriteFence(resource: "node/p0", epoch: Epoch(1))
        let map = FlowPartitions(count: 1)
        let failures = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    do { _ = try await commits.commit([start(map.newID(in: 0))], fencedBy: fence); return false } catch { return true }
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(failures == 20)
        #expect(tried.withLock { $0 } == 20, "each flow's write went to the database once")
    }

    /// A partition's engine hands each flow's writes straight to the process's shared commit: its
    /// own group committer in front would make a write wait for the engine's batch and then for
    /// the next shared transaction. The engine's store is the partition's store wrapped in the
    /// term's fence check (`FencedFlowStore`), which once hid this and so doubled the queue.
    @Test func aPartitionsEngineHandsItsWritesStraightToTheSharedCommit() async throws {
        let dir = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: dir.path + "/node.sqlite")
        let commits = PartitionCommits(maxWritesPerCommit: 1_000, commit: database.flows.commit(_:proving:))
        let partition = PartitionFlowStore(fenced: database.flows, fence: WriteFence(resource: "node/p0", epoch: Epoch(1)), commits: commits)
        let engineStore = Mutex<(any FlowStore)?>(nil)
        let work = FlowShardWork(store: partition, claim: {}, draining: { false }) { store in
            engineStore.withLock { $0 = store }
            return FlowEngine(store: store, registry: FlowRegistry(), services: FlowServices(), logger: Logger(label: "test"))
        }
        _ = work.makeTerm { _ in }
        let store = try #require(engineStore.withLock { $0 })
        #expect(store.batchesCommits)
        #expect(!database.flows.batchesCommits, "a store of its own is batched by the engine's group committer")
    }
}
