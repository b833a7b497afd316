import Coordination
import Embedded
import Flows
import Foundation
import HawserCore
@testable import HawserNode
import HawserTestSupport
import Synchronization
import Testing

/// A hot-cold process's one term (`HotColdFence`) on a real SQLite node database: its work reads
/// nothing before the claim has committed. A node whose watchdog was killed runs on as an orphan
/// until a newer node's claim commits; the node once resumed its flows beside its claim (the
/// engine was a service of its own), so on PostgreSQL it missed a start the orphan took
/// meanwhile and ran again, into the hospital, a flow the orphan had since completed (found from
/// outside: 3 of 5 trials).
@Suite(.timeLimit(.minutes(2))) struct HotColdFenceTests {
    /// The engines a term's work made.
    final class Engines: Sendable {
        let made = Mutex<[FlowEngine]>([])
        var noneResumed: Bool { made.withLock { $0.allSatisfy { !$0.hasResumed && $0.runningCount == 0 } } }
    }

    /// A flow the former owner left unfinished, written without a fence.
    func leaveUnfinished(in path: String) async throws {
        let record = FlowRecord(id: FlowID("left"), clientRequestId: nil, flowName: "Echo", arguments: Array(#"{"text":"hi"}"#.utf8),
                                attempts: 0, createdAt: Instant(microsecondsSinceEpoch: 1), updatedAt: Instant(microsecondsSinceEpoch: 1))
        _ = try await SQLiteNodeDatabase(path: path).flows.commit([.start(record)])
    }

    /// The term's work on `database`; `claim` runs before the real claiming write. The engines made
    /// are kept in `engines`.
    func work(_ database: SQLiteNodeDatabase, engines: Engines, claim: @escaping @Sendable () async -> Void) -> FlowShardWork {
        FlowShardWork(store: database.flows, claim: {
            await claim()
            try await database.flows.claim()
        }, draining: { false }) { store in
            var registry = FlowRegistry()
            registry.register(ShardServiceTests.Echo.self)
            let engine = FlowEngine(store: store, registry: registry, services: FlowServices(), logger: quietLogger)
            engines.made.withLock { $0.append(engine) }
            return engine
        }
    }

    @Test func theFlowsAreReadOnlyOnceTheClaimHasCommitted() async throws {
        let dir = try TemporaryDirectory(), path = dir.path + "/node.sqlite"
        try await leaveUnfinished(in: path)
        let database = try SQLiteNodeDatabase(path: path, fence: WriteFence(resource: "node/0", epoch: Epoch(7)))
        let (entered, enter) = AsyncStream.makeStream(of: Void.self)
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let engines = Engines()
        let serving = ServingState<FlowEngine>(.standby(active: nil))
        let fence = HotColdFence(work: work(database, engines: engines) {
            enter.yield()
            for await _ in released { return }
        }, checkClaim: { try await database.flows.checkClaim() }, serving: serving, epoch: Epoch(7), logger: quietLogger)
        let running = Task { try await fence.run() }
        defer { running.cancel() }
        for await _ in entered { break }
        // The claim is under way: the process is taking over, and nothing has been resumed.
        #expect(!serving.isActive)
        #expect(engines.made.withLock { $0.count == 1 } && engines.noneResumed)
        release.yield()
        try await eventually("the flow left unfinished runs to its end") {
            try await database.flows.record(FlowID("left"))?.status == .completed
        }
        #expect(serving.isActive && !engines.noneResumed)
        running.cancel()
        _ = await running.result
    }

    @Test func aRefusedClaimStartsNothingAndEndsTheTerm() async throws {
        let dir = try TemporaryDirectory(), path = dir.path + "/node.sqlite"
        try await leaveUnfinished(in: path)
        // A newer owner has claimed at epoch 8.
        try await SQLiteNodeDatabase(path: path, fence: WriteFence(resource: "node/0", epoch: Epoch(8))).flows.claim()
        let database = try SQLiteNodeDatabase(path: path, fence: WriteFence(resource: "node/0", epoch: Epoch(7)))
        let engines = Engines()
        let serving = ServingState<FlowEngine>(.standby(active: nil))
        let fence = HotColdFence(work: work(database, engines: engines) {}, checkClaim: { try await database.flows.checkClaim() },
                                 serving: serving, epoch: Epoch(7), logger: quietLogger)
        await #expect(throws: CoordinationError.self) { try await fence.run() }
        #expect(!serving.isActive)
        #expect(engines.noneResumed)
        #expect(try await database.flows.record(FlowID("left"))?.status == .running)
    }

    /// An orphan that writes nothing (its watchdog died; no client starts a flow) ends its term
    /// once the newer owner's claim shows: before, it served on, ready, until its next write.
    @Test func anIdleTermEndsOnceANewerOwnerHasClaimed() async throws {
        let dir = try TemporaryDirectory(), path = dir.path + "/node.sqlite"
        let database = try SQLiteNodeDatabase(path: path, fence: WriteFence(resource: "node/0", epoch: Epoch(7)))
        let serving = ServingState<FlowEngine>(.standby(active: nil))
        let fence = HotColdFence(work: work(database, engines: Engines()) {}, checkClaim: { try await database.flows.checkClaim() },
                                 checkInterval: .milliseconds(50), serving: serving, epoch: Epoch(7), logger: quietLogger)
        let running = Task { try await fence.run() }
        defer { running.cancel() }
        try await eventually("the term serves") { serving.isActive }
        // Its own claim is no newer owner.
        try await database.flows.checkClaim()
        try await SQLiteNodeDatabase(path: path, fence: WriteFence(resource: "node/0", epoch: Epoch(8))).flows.claim()
        // Bounded: a term that never ends would otherwise hold the test past its time limit.
        let ended: Result<Void, any Error>? = try await within(.seconds(60)) { await running.result }
        guard case .failure(let error)? = ended else { Issue.record("the term did not end: \(String(describing: ended))"); return }
        #expect(error is HotColdTermEnded, "\(error)")
    }
}
