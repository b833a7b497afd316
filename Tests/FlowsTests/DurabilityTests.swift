import Embedded
import Flows
import HawserCore
import HawserTestSupport
import Synchronization
import Testing
import Vault

/// When a flow's journal entries and local effects become durable (`FlowContext.Durability`).
@Suite(.timeLimit(.minutes(10))) struct DurabilityTests {
    /// Records a state, then reads the vault: its own write must be visible.
    struct RecordThenRead: Flow {
        static let flowName = "RecordThenRead"
        func run(_ context: FlowContext) async throws -> Int {
            let ref = StateRef(txId: SecureHash.sha256(Array(context.flowId.rawValue.utf8)), index: 0)
            try await context.vault.record(VaultUpdate(txId: ref.txId, consumed: [],
                                                       produced: [VaultState(ref: ref, type: "t", owner: "A", data: [])]))
            return try await context.vault.query(VaultQuery(type: "t")).states.count
        }
    }

    /// Sleeps for an hour.
    struct Sleeper: Flow {
        static let flowName = "Sleeper"
        func run(_ context: FlowContext) async throws -> Int {
            try await context.progress("going to sleep")
            try await context.sleep(for: .seconds(3600))
            return 1
        }
    }

    /// A clock whose sleeps report themselves and then last until cancelled.
    final class ReportingClock: FlowClock {
        let sleeping = AsyncStream.makeStream(of: Void.self)
        func now() -> Instant { SystemFlowClock().now() }
        func sleep(for duration: Duration) async throws {
            sleeping.continuation.yield()
            let (never, _) = AsyncStream.makeStream(of: Void.self)
            for await _ in never {}
            throw CancellationError()
        }
    }

    /// The node database, refusing every transaction while `broken` is set, and the next
    /// `failJournalCommits` transactions that carry a journal entry.
    final class BreakableStore: FlowStore {
        let inner: SQLiteFlowStore
        let broken = Mutex(false)
        let failJournalCommits = Mutex(0)
        let resumableFails = Mutex(false)
        /// The kinds of the writes in each transaction committed, in order.
        let committed = Mutex<[[String]]>([])
        /// The kinds of the journal entries in each transaction committed, in order.
        let journaled = Mutex<[[String]]>([])
        init(_ inner: SQLiteFlowStore) { self.inner = inner }
        var batchesCommits: Bool { inner.batchesCommits }
        func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?] {
            if broken.withLock({ $0 }) { throw TransientFlowError("the disk is gone") }
            let carriesJournal = writes.contains { if case .journal = $0 { true } else { false } }
            let fail = carriesJournal && failJournalCommits.withLock { left in
                defer { left = max(0, left - 1) }
                return left > 0
            }
            if fail { throw TransientFlowError("the disk hiccupped") }
            let stored = try await inner.commit(writes)
            journaled.withLock { $0.append(writes.compactMap { if case .journal(_, let entry, _) = $0 { entry.kind } else { nil } }) }
            committed.withLock {
                $0.append(writes.map {
                    switch $0 {
                    case .start: "start"
                    case .journal: "journal"
                    case .state: "state"
                    case .compact: "compact"
                    case .replayMarker: "marker"
                    case .notaryAsked: "asked"
                    }
                })
            }
            return stored
        }
        func record(_ id: FlowID) async throws -> FlowRecord? { try await inner.record(id) }
        func record(clientRequestId: String) async throws -> FlowRecord? { try await inner.record(clientRequestId: clientRequestId) }
        func journal(of id: FlowID) async throws -> [JournalEntry] { try await inner.journal(of: id) }
        func list(_ query: FlowQuery) async throws -> [FlowRecord] { try await inner.list(query) }
        func resumable() async throws -> [FlowRecord] {
            if resumableFails.withLock({ $0 }) { throw TransientFlowError("the disk is gone") }
            return try await inner.resumable()
        }
        func replayMarkers() async throws -> Set<FlowID> { try await inner.replayMarkers() }
        func hasAskedNotary(_ id: FlowID) async throws -> Bool { try await inner.hasAskedNotary(id) }
        func clearReplayMarkers(_ ids: [FlowID]) async throws {
            if broken.withLock({ $0 }) { throw TransientFlowError("the disk is gone") }
            try await inner.clearReplayMarkers(ids)
        }
    }

    /// Calls the outside once, then returns.
    struct CallsOut: Flow {
        static let flowName = "CallsOut"
        func run(_ context: FlowContext) async throws -> String {
            _ = try await context.random()
            return try await context.external("call") { _ in
                try context.services.service(Hooks.self)!.call("call")
                return "done"
            }
        }
    }

    @Test func aStartThatCannotBeWrittenRunsNothingOutsideAndReportsTheError() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let (engine, store, hooks) = breakable(database, running: CallsOut.self)
        try await running(engine) {
            store.broken.withLock { $0 = true }
            await #expect(throws: TransientFlowError.self) { try await engine.start(CallsOut(), clientRequestId: "c-1") }
            store.broken.withLock { $0 = false }
            #expect(hooks.calls("call") == 0, "a flow whose start is not durable must not act outside the node")
            #expect(try await database.flows.list(FlowQuery(limit: 10)).isEmpty)
            // The same client request id starts afresh once the store works again.
            let record = try await engine.waitForEnd(try await engine.start(CallsOut(), clientRequestId: "c-1").id)
            #expect(record.status == .completed)
            #expect(hooks.calls("call") == 1)
        }
    }

    @Test func aWaitingStartIsWrittenWithTheFlowsFirstCommit() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let (engine, store, hooks) = breakable(database, running: CallsOut.self)
        try await running(engine) {
            let (record, created) = try await engine.startAndWait(flowName: CallsOut.flowName, arguments: try FlowCoding.encode(CallsOut()),
                                                                  clientRequestId: "c-1")
            #expect(created)
            #expect(record.status == .completed)
            #expect(hooks.calls("call") == 1)
            // The start went with the random number, written before the flow called out.
            #expect(store.committed.withLock { $0 } == [["start", "journal"], ["journal"], ["state", "compact"]])
        }
    }

    @Test func aWaitingStartThatCannotBeWrittenStoresNothingAndReportsTheError() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let (engine, store, hooks) = breakable(database, running: CallsOut.self)
        let arguments = try FlowCoding.encode(CallsOut())
        try await running(engine) {
            store.broken.withLock { $0 = true }
            await #expect(throws: TransientFlowError.self) {
                try await engine.startAndWait(flowName: CallsOut.flowName, arguments: arguments, clientRequestId: "c-1")
            }
            store.broken.withLock { $0 = false }
            #expect(hooks.calls("call") == 0, "a flow whose start is not durable must not act outside the node")
            #expect(try await database.flows.list(FlowQuery(limit: 10)).isEmpty)
            let again = try await engine.startAndWait(flowName: CallsOut.flowName, arguments: arguments, clientRequestId: "c-1")
            #expect(again.created)
            #expect(again.record.status == .completed)
            #expect(hooks.calls("call") == 1)
        }
    }

    @Test func anEngineWhoseStartUpFailsStopsTheFlowsItRuns() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let (engine, store, id) = try await flowAtItsGate(database)
        store.resumableFails.withLock { $0 = true }
        await #expect(throws: TransientFlowError.self) { try await engine.run() }
        // Left running, the flow would go on beside the engine that takes the database over next.
        #expect(engine.runningCount == 0)
        #expect(try await database.flows.record(id)?.status == .running)
    }

    @Test func aWaiterOnAStoppedEngineHearsThatItStopped() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let (engine, _, id) = try await flowAtItsGate(database)
        let before = try await engine.events(of: id)   // registered while the flow runs
        await engine.stop()
        var heard = [FlowEvent]()
        for await event in before { heard.append(event) }
        #expect(heard.map(\.step) == ["one"])
        await #expect(throws: FlowEngineError.stopping) { _ = try await engine.waitForEnd(id) }   // registered after the stop
    }

    /// Draws a number, hands it to the outside, then waits at the gate.
    struct RandomThenCall: Flow {
        static let flowName = "RandomThenCall"
        func run(_ context: FlowContext) async throws -> UInt64 {
            let hooks = context.services.service(Hooks.self)!
            let n = try await context.random()
            let seen = try await context.external("call") { _ in
                try hooks.call("call")
                return n
            }
            _ = try await context.external("gate") { _ in
                try await hooks.gate.pass()
                return true
            }
            return seen
        }
    }

    @Test func entriesWhoseCommitFailedAreWrittenBeforeTheRetryUsesThem() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let (engine, store, hooks) = breakable(database, running: RandomThenCall.self)
        try await running(engine) {
            // The commit before the outside call (carrying the drawn number) fails once.
            store.failJournalCommits.withLock { $0 = 1 }
            let id = try await engine.start(RandomThenCall()).id
            await hooks.gate.reached()
            let journal = try await database.flows.journal(of: id)
            hooks.gate.release()
            let record = try await engine.waitForEnd(id)
            #expect(record.status == .completed)
            // The number the outside saw is the one on disk, so a replay after a crash agrees.
            #expect(journal.map(\.kind) == [EffectKind.random, EffectKind.external])
            #expect(try FlowCoding.decode(UInt64.self, journal[0].result) == FlowCoding.decode(UInt64.self, record.result ?? []))
            #expect(hooks.calls("call") == 1)
        }
    }

    /// Records a state of its own if `record`, then chooses one state to spend.
    struct RecordOrChoose: Flow {
        static let flowName = "RecordOrChoose"
        var record: Bool
        func run(_ context: FlowContext) async throws -> Int {
            if record {
                let ref = StateRef(txId: SecureHash.sha256(Array(context.flowId.rawValue.utf8)), index: 0)
                try await context.vault.record(VaultUpdate(txId: ref.txId, consumed: [],
                                                           produced: [VaultState(ref: ref, type: "t", owner: "A", data: [])]))
                return 0
            }
            try await context.progress("choosing")
            return try await context.vault.selectAndReserve(VaultQuery(type: "t"), from: 0) { _, _ in .takeAndStop }?.count ?? 0
        }
    }

    /// A flow started with `startAndWait` chooses states only once its start is written: a
    /// choice made before it locked a state for a flow whose start was then refused, and nothing
    /// released the lock (session 33 tried a choice with a vault read's durability, which does
    /// not write the pending start first; the node's tests hung).
    @Test func aWaitingStartThatCannotBeWrittenLocksNothing() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let store = BreakableStore(database.flows)
        var registry = FlowRegistry()
        registry.register(RecordOrChoose.self)
        var services = FlowServices()
        services.add(database.vault, as: (any VaultStore).self)
        let engine = FlowEngine(store: store, registry: registry, services: services,
                                configuration: .init(endEffects: { [.releaseSoftLocks(holder: $0.rawValue)] }), logger: quietLogger)
        try await running(engine) {
            let recorded = try await engine.waitForEnd(try await engine.start(RecordOrChoose(record: true)).id)
            #expect(recorded.status == .completed)
            store.broken.withLock { $0 = true }
            await #expect(throws: (any Error).self) {
                _ = try await engine.startAndWait(flowName: RecordOrChoose.flowName, arguments: try FlowCoding.encode(RecordOrChoose(record: false)))
            }
            let states = try await database.vault.query(VaultQuery(type: "t"))
            #expect(states.count == 1 && states.allSatisfy { $0.lockedBy == nil }, "\(states.map { $0.lockedBy ?? "-" })")
        }
    }

    /// An engine running `flow` on a `BreakableStore` over `database`, retrying quickly.
    func breakable<F: Flow>(_ database: SQLiteNodeDatabase, running flow: F.Type) -> (FlowEngine, BreakableStore, Hooks) {
        let store = BreakableStore(database.flows)
        let hooks = Hooks()
        var registry = FlowRegistry()
        registry.register(flow)
        var services = FlowServices()
        services.add(hooks, as: Hooks.self)
        let hospital = HospitalPolicy(initialDelay: .milliseconds(1), maxDelay: .milliseconds(2), maxAttempts: 3)
        let engine = FlowEngine(store: store, registry: registry, services: services, configuration: .init(hospital: hospital),
                                logger: quietLogger)
        return (engine, store, hooks)
    }

    /// A breakable engine over `database` whose one flow has started and waits at its gate.
    func flowAtItsGate(_ database: SQLiteNodeDatabase) async throws -> (FlowEngine, BreakableStore, FlowID) {
        let (engine, store, hooks) = breakable(database, running: StepsFlow.self)
        let id = try await engine.start(StepsFlow(gated: true)).id
        await hooks.gate.reached()
        return (engine, store, id)
    }

    func engine(_ database: SQLiteNodeDatabase, clock: any FlowClock = SystemFlowClock()) -> FlowEngine {
        var registry = FlowRegistry()
        registry.register(RecordThenRead.self)
        registry.register(Sleeper.self)
        var services = FlowServices(clock: clock)
        services.add(database.vault, as: (any VaultStore).self)
        return FlowEngine(store: database.flows, registry: registry, services: services, logger: quietLogger)
    }

    @Test func aFlowReadsItsOwnLocalWritesAndOthersSeeThemOnceItEnds() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let engine = engine(database)
        try await running(engine) {
            let record = try await engine.waitForEnd(try await engine.start(RecordThenRead()).id)
            #expect(record.status == .completed)
            #expect(try FlowCoding.decode(Int.self, record.result ?? []) == 1)
            #expect(try await database.vault.query(VaultQuery(type: "t")).count == 1)
        }
    }

    @Test func aDurableTimersWakeUpTimeIsWrittenBeforeTheFlowSleeps() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let clock = ReportingClock()
        let engine = engine(database, clock: clock)
        try await running(engine) {
            let id = try await engine.start(Sleeper()).id
            for await _ in clock.sleeping.stream { break }
            // Asleep: what came before and the wake-up time are durable, so a restart sleeps only what is left.
            #expect(try await database.flows.journal(of: id).map(\.kind) == [EffectKind.progress, EffectKind.sleep])
        }
    }
}
