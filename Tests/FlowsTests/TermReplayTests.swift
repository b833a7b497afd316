import Coordination
import Embedded
import Flows
import HawserCore
import HawserTestSupport
import Synchronization
import Testing

/// The replay marker (`StartupReplay`) across the owners of one shared database, each a term with
/// an epoch of its own, as hot-warm nodes take the shard from each other. A term that steps down
/// releases its fence before its engine stops; the engine then clears the markers of the flows it
/// stopped under the term's epoch, so the next owner replays them. A term whose process dies
/// while replaying a flow (an engine left running, never stopped) leaves the marker set, and the
/// next owner parks the flow.
@Suite(.timeLimit(.minutes(10))) struct TermReplayTests {
    func engine(_ harness: EngineHarness, store: (any FlowStore)? = nil, markerGrace: Duration = .zero) -> FlowEngine {
        harness.engine(store: store, markerGrace: markerGrace) { $0.register(PoisonFlowTests.StuckFlow.self) }
    }

    /// A term at epoch 1 starts a flow that waits at the gate and ends cleanly; a term at epoch 2
    /// claims the database and resumes the flow until the gate. Returns the second term.
    func secondTermReplaying(in directory: String) async throws -> (harness: EngineHarness, engine: FlowEngine, fence: WriteFence, flow: FlowID) {
        let first = try EngineHarness(directory: directory, fence: WriteFence(resource: "node/0", epoch: Epoch(1)))
        let firstEngine = engine(first)
        let id = try await running(firstEngine) {
            let id = try await firstEngine.start(PoisonFlowTests.StuckFlow()).id
            await first.hooks.gate.reached()
            return id
        }
        let fence = WriteFence(resource: "node/0", epoch: Epoch(2))
        let second = try EngineHarness(directory: directory, fence: fence)
        _ = try await second.database.flows.commit([])  // the claiming write
        let secondEngine = engine(second)
        try await secondEngine.resumeUnfinished()
        await second.hooks.gate.reached()
        #expect(try await second.database.flows.replayMarkers() == [id])
        return (second, secondEngine, fence, id)
    }

    /// The next owner, at epoch 3, with the gate open: returns the flow's end.
    func thirdTerm(in directory: String, _ id: FlowID) async throws -> FlowRecord {
        let third = try EngineHarness(directory: directory, fence: WriteFence(resource: "node/0", epoch: Epoch(3)))
        third.hooks.gate.release()
        let engine = engine(third)
        return try await running(engine) { try await engine.waitForEnd(id) }
    }

    /// Failed before the fix: the stop's clearing write was refused (`not_owner`, the fence
    /// released), and the next owner parked the flow.
    @Test func aTermThatStepsDownLeavesNoMarkerAndTheNextOwnerReplaysTheFlow() async throws {
        let directory = try TemporaryDirectory()
        let second = try await secondTermReplaying(in: directory.path)
        second.fence.release()  // stepping down: the fence first, then the engine
        await second.engine.stop()
        #expect(try await second.harness.database.flows.replayMarkers().isEmpty)

        let record = try await thirdTerm(in: directory.path, second.flow)
        #expect(record.status == .completed, "\(record.status): \(record.error ?? "")")
    }

    /// A term that loses the shard while replaying a flow, without dying (its lease not confirmed
    /// in time under load), after the next owner has claimed: its stop's clearing write is taken
    /// all the same, and the next owner, which waits before parking a flow it found marked, runs
    /// the flow to its end. Before, the write was refused (`stale_epoch`) and the next owner parked
    /// the healthy flow as poison (found from outside: two flows a hot-hot take-over parked).
    @Test func aFlowOfATermThatLostTheShardWithoutDyingIsReplayedByTheNextOwner() async throws {
        let directory = try TemporaryDirectory()
        let second = try await secondTermReplaying(in: directory.path)
        let third = try EngineHarness(directory: directory.path, fence: WriteFence(resource: "node/0", epoch: Epoch(3)))
        _ = try await third.database.flows.commit([])  // the next owner claims before the second term stops
        third.hooks.gate.release()
        // The third term's second read of the unfinished flows comes after its grace: the second
        // term finds it lost the shard, and stops, while the third waits.
        let reads = Atomic(0)
        let base = third.database.flows
        let store = InterceptedFlowStore(base, resumable: { read in
            if reads.add(1, ordering: .relaxed).newValue == 2 {
                second.fence.release()
                await second.engine.stop()
            }
            return try await read()
        }, commit: { try await base.commit($0) })
        let thirdEngine = engine(third, store: store, markerGrace: .milliseconds(300))
        let record = try await running(thirdEngine) { try await thirdEngine.waitForEnd(second.flow) }
        #expect(reads.load(ordering: .relaxed) == 2)
        #expect(record.status == .completed, "\(record.status): \(record.error ?? "")")
    }

    /// A term's stop clears only the markers no write of their flow cleared since it set them:
    /// once a flow has written, the next owner may have marked it again, and the clear is
    /// unfenced. Before, the stop cleared every flow it had replayed, the next owner's marker with them.
    @Test func aStopLeavesTheMarkersOfFlowsThatWroteSinceTheirReplay() async throws {
        let directory = try TemporaryDirectory()
        let first = try EngineHarness(directory: directory.path, fence: WriteFence(resource: "node/0", epoch: Epoch(1)))
        let firstEngine = first.engine()
        let id = try await running(firstEngine) {
            let id = try await firstEngine.start(StepsFlow(gated: true)).id
            await first.hooks.gate.reached()
            return id
        }
        // The second term replays the flow, which writes (clearing its marker) before it waits at the gate.
        let second = try EngineHarness(directory: directory.path, fence: WriteFence(resource: "node/0", epoch: Epoch(2)))
        _ = try await second.database.flows.commit([])
        let secondEngine = second.engine()
        try await secondEngine.resumeUnfinished()
        await second.hooks.gate.reached()
        #expect(try await second.database.flows.replayMarkers().isEmpty)
        // The third term takes the shard over and sets the flow's marker again; it is held before
        // it reads the flow's journal, so the flow does not write (and clear it) yet.
        let third = try EngineHarness(directory: directory.path, fence: WriteFence(resource: "node/0", epoch: Epoch(3)))
        _ = try await third.database.flows.commit([])
        let (held, hold) = AsyncStream.makeStream(of: Void.self)
        let base = third.database.flows
        let thirdEngine = third.engine(store: InterceptedFlowStore(base, journal: { _ in for await _ in held {} },
                                                                   commit: { try await base.commit($0) }))
        let resumed = Task { try await thirdEngine.resumeUnfinished() }
        try await eventually("the third term marks the flow") { try await base.replayMarkers() == [id] }
        // The second term stops: the third's marker stays.
        await secondEngine.stop()
        #expect(try await base.replayMarkers() == [id])
        hold.finish()
        try await resumed.value
        await thirdEngine.stop()
    }

    /// The same with the grace: a term whose process died leaves its marker set, and the next
    /// owner parks the flow once it has waited.
    @Test func aFlowOfATermWhoseProcessDiedIsParkedAfterTheGrace() async throws {
        let directory = try TemporaryDirectory()
        let crashed = try await secondTermReplaying(in: directory.path)
        let third = try EngineHarness(directory: directory.path, fence: WriteFence(resource: "node/0", epoch: Epoch(3)))
        third.hooks.gate.release()
        let thirdEngine = engine(third, markerGrace: .milliseconds(300))
        let record = try await running(thirdEngine) { try await thirdEngine.waitForEnd(crashed.flow) }
        #expect(record.status == .hospitalised)
        #expect(record.error == StartupReplay.parkedReason)
        await crashed.engine.stop()
    }

    @Test func aTermWhoseProcessDiesWhileReplayingAFlowLeavesItParked() async throws {
        let directory = try TemporaryDirectory()
        // The second term's process dies at the gate: its engine is not stopped, its fence not released.
        let crashed = try await secondTermReplaying(in: directory.path)
        let record = try await thirdTerm(in: directory.path, crashed.flow)
        #expect(record.status == .hospitalised)
        #expect(record.retryAt == nil)
        #expect(record.error == StartupReplay.parkedReason)
        await crashed.engine.stop()
    }

    /// A stop that comes while the term's resume commits its replay markers. Before, the stop
    /// found no marker to clear and returned; the markers then committed, and the next owner
    /// parked the flow as poison. Now the stop waits for the resume and clears them. (The
    /// simulation's model of the engine had assumed this; the engine did not do it.)
    @Test func aStopDuringTheResumeStillClearsTheMarkersItSets() async throws {
        let directory = try TemporaryDirectory()
        let first = try EngineHarness(directory: directory.path, fence: WriteFence(resource: "node/0", epoch: Epoch(1)))
        let firstEngine = engine(first)
        let id = try await running(firstEngine) {
            let id = try await firstEngine.start(PoisonFlowTests.StuckFlow()).id
            await first.hooks.gate.reached()
            return id
        }
        // The second term's first commit, its replay markers, waits until the stop is under way.
        let second = try EngineHarness(directory: directory.path, fence: WriteFence(resource: "node/0", epoch: Epoch(2)))
        let (committing, arrive) = AsyncStream.makeStream(of: Void.self)
        let (opened, open) = AsyncStream.makeStream(of: Void.self)
        let flows = second.database.flows
        let secondEngine = engine(second, store: InterceptedFlowStore(flows) { writes in
            arrive.yield()
            for await _ in opened {}
            return try await flows.commit(writes)
        })
        let resume = Task { try await secondEngine.resumeUnfinished() }
        for await _ in committing { break }
        let stop = Task { await secondEngine.stop() }
        try await eventually("the stop under way") { secondEngine.isStopping }
        open.finish()
        await stop.value
        _ = await resume.result
        #expect(try await flows.replayMarkers().isEmpty)

        let record = try await thirdTerm(in: directory.path, id)
        #expect(record.status == .completed, "\(record.status): \(record.error ?? "")")
    }
}
