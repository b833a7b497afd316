import HawserCore
import Logging
import ServiceLifecycle
import Sessions
import Synchronization

/// Runs flows durably. Starting a flow stores it; each effect it completes is journaled (group
/// commit across flows); a flow that throws goes to the hospital; after a restart `run` replays
/// every unfinished flow from its journal. Shutdown cancels running flows without marking them:
/// they continue where their journal ends when the node starts again.
public final class FlowEngine: Service, Sendable {
    public struct Configuration: Sendable {
        public var hospital: HospitalPolicy
        /// Most writes committed in one flow-store transaction.
        public var maxWritesPerCommit: Int
        /// Local effects committed with a flow's final status (the node releases its soft locks here).
        public var endEffects: @Sendable (FlowID) -> [LocalEffect]
        /// The id of each flow this engine starts (a hot-hot node's partition engine makes them
        /// fall in its partition, `FlowPartitions.newID(in:)`).
        public var newFlowID: @Sendable () -> FlowID
        /// Hears each flow that ended or was parked here, once its state is durable (a hot-hot
        /// process tells RPC workers waiting for it, on the bus).
        public var settled: @Sendable (FlowID) -> Void = { _ in }
        /// False for an engine that only admits starts for other processes to run (`queue`: a
        /// hot-hot worker without the flow role, whose stores are not fenced by any partition):
        /// it refuses to run or resume a flow (`FlowEngineError.runsNoFlows`).
        public var runsFlows = true
        /// How long a resume waits before it parks a flow whose replay marker it found set, for
        /// the process that set it to clear it (`StartupReplay.deferringSuspects`): zero where no
        /// other process can have run the flows (a single node), a few seconds where one may
        /// have lost them to this one without dying.
        public var markerGrace: Duration = .zero

        public init(hospital: HospitalPolicy = HospitalPolicy(), maxWritesPerCommit: Int = 1_000,
                    endEffects: @escaping @Sendable (FlowID) -> [LocalEffect] = { _ in [] },
                    newFlowID: @escaping @Sendable () -> FlowID = { FlowID.next() }) {
            self.hospital = hospital
            self.maxWritesPerCommit = maxWritesPerCommit
            self.endEffects = endEffects
            self.newFlowID = newFlowID
        }
    }

    private struct Live {
        var task: Task<Void, Never>
        /// The flow's state machine: its task, operators (kill, park) and `stop` feed it events.
        var machine: FlowTransition.State
        /// The flow's current run: its journal holds the progress not yet durable.
        var context: FlowContext?
        /// Set when the flow's last status is published, just before its task leaves `live`: a
        /// watcher that registers after that hears nothing more from the task and reads the store.
        var hasEnded = false
        /// Cuts short the hospital's delay the flow is waiting out (an operator's resume).
        var wake: AsyncStream<Void>.Continuation?
        /// An operator resumed the flow after its retry time was recorded, before its wait began:
        /// the wait ends at once.
        var resumeAsked = false
        /// The flow has asked the notary, in this run or an earlier one here: it is not killed.
        var askedNotary = false
    }
    private struct State {
        var live: [FlowID: Live] = [:]
        var watchers: [FlowID: [Int: FlowWatcher]] = [:]
        var nextWatcher = 0
        var draining = false
        var stopping = false
        /// Set once the process begins to shut down (`endWaits`): no watcher waits any more.
        var waitsEnded = false
        /// Flows that completed here lately, so a waiter learns the result without a read.
        var completed: [FlowID: FlowRecord] = [:]
        var completedOrder: [FlowID] = []
        /// Flows this engine launched with their replay marker set; cleared when it stops.
        var marked: Set<FlowID> = []
        /// The flows this engine admitted, and those an operator resumed, killed or parked, before
        /// `resumeUnfinished` read the store's unfinished ones; nil once it has. Resuming leaves
        /// them alone: they run already, or have ended and must not run again. Which engine
        /// started a flow decides, not when it was created: a clock stepped back, or another
        /// node's clock, makes creation times lie.
        var takenBeforeResume: Set<FlowID>? = []
        /// Set once `resumeUnfinished` has resumed (or parked) every unfinished flow.
        var resumed = false
        /// `resumeUnfinished` is under way; `stop` waits for it (`resumeWaiters`).
        var resuming = false
        var resumeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    public let store: any FlowStore
    public let registry: FlowRegistry
    public let services: FlowServices
    private let configuration: Configuration
    private let committer: GroupCommitter
    private let logger: Logger
    private let state = Mutex(State())

    public init(store: any FlowStore, registry: FlowRegistry, services: FlowServices,
                configuration: Configuration = Configuration(), logger: Logger) {
        self.store = store
        self.registry = registry
        self.services = services
        self.configuration = configuration
        self.committer = GroupCommitter(store: store, maxWritesPerCommit: configuration.maxWritesPerCommit) { [services] recipients in
            services.sessions?.outboxChanged(for: recipients)
        }
        self.logger = logger
    }

    // MARK: Service

    /// Resumes every unfinished flow (parking those a replay at the last start-up found fatal,
    /// see `StartupReplay`), then runs until graceful shutdown.
    public func run() async throws {
        try await resumeUnfinished()
        try? await gracefulShutdown()
        await stop()
    }

    /// Resumes the unfinished flows, all but those this engine started itself (starts may reach
    /// it meanwhile), and returns once they run. `run` calls it; a host that runs the engine
    /// itself (a hot-warm node's term) calls it, then `stop`. On failure the engine is stopped.
    public func resumeUnfinished() async throws {
        let begun = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.resuming = true
            return true
        }
        guard begun else { throw CancellationError() }
        defer { finishResuming() }
        guard configuration.runsFlows else { throw FlowEngineError.runsNoFlows }
        do {
            let unfinished = try await store.resumable()
            let started = state.withLock { state in
                defer { state.takenBeforeResume = nil }
                return state.takenBeforeResume ?? []
            }
            var plan = StartupReplay(resumable: unfinished.filter { !started.contains($0.id) },
                                     markers: try await store.replayMarkers(), now: services.clock.now())
            if configuration.markerGrace > .zero, !plan.parked.isEmpty {
                let (writes, suspects) = plan.deferringSuspects
                try await replay(plan.replay, after: writes)
                logger.notice("waiting before parking flows whose replay marker is set: the process that set it may still clear it",
                              metadata: ["flows": "\(suspects.count)", "grace": "\(configuration.markerGrace)"])
                try await waitUnlessStopping(configuration.markerGrace)
                plan = StartupReplay(resumable: try await store.resumable().filter { suspects.contains($0.id) },
                                     markers: try await store.replayMarkers().intersection(suspects), now: services.clock.now())
            }
            try await replay(plan.replay, after: plan.writes)
            for parked in plan.parked {
                logger.error("flow parked in the hospital at start-up: the node went down while replaying it",
                             metadata: ["flow": "\(parked.id)"])
                announce(parked.id, parked.state)
            }
        } catch {
            // Flows started or resumed so far must not outlive the service (a cancelled read
            // lands here when shutdown comes early): another engine may take them over next.
            await stopFlows()
            throw error
        }
        state.withLock { $0.resumed = true }
        logger.info("flow engine running", metadata: ["resumed": "\(runningCount)"])
    }

    /// The flow's own write cleared the marker this engine set: the stop must not clear it again,
    /// since by then another owner may have set one of its own (`FlowStore.clearReplayMarkers`).
    private func markerCleared(_ id: FlowID) {
        state.withLock { _ = $0.marked.remove(id) }
    }

    /// Commits `writes` (the replay markers of `records`, among others), then runs `records`.
    private func replay(_ records: [FlowRecord], after writes: [FlowWrite]) async throws {
        if !writes.isEmpty { _ = try await committer.commit(writes) }
        // Recorded even if a stop came meanwhile: that stop clears them once the resume returns.
        state.withLock { $0.marked.formUnion(records.map(\.id)) }
        for record in records {
            launch(record, journal: try await store.journal(of: record.id), replayMarked: true)
        }
    }

    /// Waits `duration`, or throws `CancellationError` once the engine is stopping.
    private func waitUnlessStopping(_ duration: Duration) async throws {
        let until = ContinuousClock.now + duration
        while ContinuousClock.now < until {
            if state.withLock({ $0.stopping }) { throw CancellationError() }
            try await Task.sleep(for: min(.milliseconds(100), until - .now))
        }
    }

    /// True once the engine has resumed every unfinished flow it found at start (before, the
    /// node is not ready: those flows' effects are not under way yet).
    public var hasResumed: Bool { state.withLock { $0.resumed } }

    /// Cancels every running flow (without changing its stored status) and waits for them; then
    /// clears the replay markers it set (a flow still running did not crash the node), also when
    /// its fence has just been released (`FlowStore.clearReplayMarkers`): a term that steps down
    /// leaves none for the next owner to take for a crash.
    /// A resume under way (`resumeUnfinished`) is waited for first: the markers it sets may
    /// commit after this stop began, and must be cleared too.
    public func stop() async {
        _ = stopLive()
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let waits = state.withLock { state in
                if state.resuming { state.resumeWaiters.append(waiter) }
                return state.resuming
            }
            if !waits { waiter.resume() }
        }
        await stopFlows()
    }

    private func finishResuming() {
        let waiters = state.withLock { state in
            state.resuming = false
            defer { state.resumeWaiters = [] }
            return state.resumeWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Marks the engine stopping and tells each live flow's state machine, cancelling the flows
    /// it says to; returns every live flow's task.
    private func stopLive() -> [Task<Void, Never>] {
        let (tasks, cancelled) = state.withLock { state in
            state.stopping = true
            var cancelled = [Task<Void, Never>]()
            for (id, live) in state.live where transition(.stop, of: id, in: &state).contains(.cancel) { cancelled.append(live.task) }
            return (state.live.values.map(\.task), cancelled)
        }
        for task in cancelled { task.cancel() }
        return tasks
    }

    /// Cancels the running flows, waits for them, and clears the markers this engine set.
    private func stopFlows() async {
        for task in stopLive() { await task.value }
        let marked = state.withLock { state in
            defer { state.marked = [] }
            return state.marked
        }
        guard !marked.isEmpty else { return }
        do {
            try await committer.clearReplayMarkers(marked.sorted())
        } catch {
            logger.error("could not clear the replay markers", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Requests

    /// Starts a flow by name with JSON arguments. With a client request id already used, returns
    /// that flow instead of starting another (also while draining).
    public func start(flowName: String, arguments: [UInt8], clientRequestId: String? = nil) async throws -> FlowRecord {
        try await startReporting(flowName: flowName, arguments: arguments, clientRequestId: clientRequestId).record
    }

    /// As `start`, also saying whether this call created the flow (false: the id named an existing one).
    /// `responder`: the session hub starts a responder flow (`ResponderFlow`), which nothing else may start.
    public func startReporting(flowName: String, arguments: [UInt8], clientRequestId: String? = nil, responder: Bool = false) async throws
        -> (record: FlowRecord, created: Bool) {
        let (record, flow): (FlowRecord, any Flow)
        switch try await admit(flowName: flowName, arguments: arguments, clientRequestId: clientRequestId, responder: responder) {
        case .existing(let found): return (found, false)
        case .new(let new, let decoded): (record, flow) = (new, decoded)
        }
        let committed: FlowRecord?
        do {
            committed = try await committer.commit(.start(record))
        } catch {
            // The start may have been made with its answer lost (the database crashed): the
            // flow's task learns from the store whether the flow exists, and if so runs it.
            launch(record, journal: nil, flow: flow)
            throw error
        }
        guard let stored = committed else { fatalError("the store returned no record for a start") }
        guard stored.id == record.id else {
            // A start with the same client request id won the race.
            return (try Admission.existing(stored, flowName: flowName, arguments: record.arguments), false)
        }
        launch(stored, journal: [], flow: flow)
        return (stored, true)
    }

    /// As `startReporting` then `waitForEnd`, with one commit round fewer: the start is written
    /// with the flow's first durable write, not on its own. The call returns once that write is
    /// done (what it returns is durable) and the `timeout` counts from then. Throws
    /// `FlowEngineError.stopping` if the engine is stopping, and the store's error if the start
    /// could not be written; nothing is stored then.
    /// `waitingForExisting` false: a flow the client request id already names is returned as it
    /// stands, for the caller to wait where that flow runs (a hot-hot node's other partition).
    public func startAndWait(flowName: String, arguments: [UInt8], clientRequestId: String? = nil,
                             timeout: Duration? = nil, waitingForExisting: Bool = true) async throws -> (record: FlowRecord, created: Bool) {
        let start: DeferredStart
        switch try await admit(flowName: flowName, arguments: arguments, clientRequestId: clientRequestId) {
        case .existing(let found):
            return (waitingForExisting ? try await waitForEnd(found.id, timeout: timeout) : found, false)
        case .new(let record, let flow):
            start = DeferredStart(record)
            guard launch(record, journal: [], flow: flow, start: start) else { throw FlowEngineError.stopping }
        }
        var stored = try await start.stored()
        if !start.isCreated {
            stored = try Admission.existing(stored, flowName: flowName, arguments: start.record.arguments)
            if !waitingForExisting { return (stored, false) }
        }
        return (try await waitForEnd(stored.id, timeout: timeout), start.isCreated)
    }

    /// Admits a start as `startReporting` does but does not run it: `enqueue` records it for the
    /// engine of another process (a hot-hot RPC worker's start, `NodeFlowStore.enqueue`) and
    /// returns the stored record, the flow the client request id named if it was used.
    /// `responder`: as `startReporting`'s (a hot-hot worker without the flow role takes a peer's message).
    public func queue(flowName: String, arguments: [UInt8], clientRequestId: String? = nil, responder: Bool = false,
                      into enqueue: (FlowRecord) async throws -> FlowRecord) async throws -> (record: FlowRecord, created: Bool) {
        switch try await admit(flowName: flowName, arguments: arguments, clientRequestId: clientRequestId, responder: responder,
                               runsHere: false) {
        case .existing(let found):
            return (found, false)
        case .new(let record, _):
            let stored = try await enqueue(record)
            guard stored.id == record.id else { return (try Admission.existing(stored, flowName: flowName, arguments: record.arguments), false) }
            return (stored, true)
        }
    }

    /// Runs queued starts (`queue`, by another process; `NodeFlowStore.queued` reads them): each
    /// flow of `queued` that was running when read and does not run here yet. Returns the ids
    /// settled (running here now, or no longer running), for the queue to drop. Before this engine
    /// has resumed, none: a resume under way launches flows from an earlier read, and could run
    /// one again after it ended. The flow's task reads the store once registered (`launch` without
    /// a journal), so a flow that ran and ended here since the queue was read does not run again.
    public func adopt(_ queued: [FlowRecord]) -> [FlowID] {
        guard hasResumed else { return [] }
        return queued.compactMap { record in
            guard record.status == .running else { return record.id }
            let running = launch(record, journal: nil) || state.withLock { $0.live[record.id] != nil }
            return running ? record.id : nil
        }
    }

    private enum StartAdmission {
        case existing(FlowRecord)
        case new(FlowRecord, any Flow)
    }

    /// A start request's flow, checked and decoded, and its record; or the flow its client request
    /// id already names, also while draining, if that flow is this same request (else
    /// `clientRequestIdReused`). The store answers that too for a start racing with this one.
    /// `runsHere` false: another process's engine runs the flow (`queue`).
    private func admit(flowName: String, arguments: [UInt8], clientRequestId: String?, responder: Bool = false,
                       runsHere: Bool = true) async throws -> StartAdmission {
        if runsHere, !configuration.runsFlows { throw FlowEngineError.runsNoFlows }
        if let clientRequestId {
            try Admission.check(clientRequestId: clientRequestId)
            // Kept for responders (one per session), so that no other start can take a session's id.
            if !responder, clientRequestId.hasPrefix(SessionInbound.responderRequestPrefix) {
                throw FlowEngineError.invalidClientRequestId("begins with `\(SessionInbound.responderRequestPrefix)`, which names the responders of flow sessions")
            }
        }
        do {
            // A party argument may name a party of the network, not only one this node hosts.
            let services = self.services
            let (flow, stored) = try registry.admit(flowName, arguments: arguments, responder: responder) { services.knows(party: $0) }
            guard !isDraining else { throw FlowEngineError.draining }
            let now = services.clock.now()
            let record = FlowRecord(id: configuration.newFlowID(), clientRequestId: clientRequestId, flowName: flowName, arguments: stored,
                                    createdAt: now, updatedAt: now)
            // Before its start is written: a resume that reads it must know it is this engine's.
            if runsHere { state.withLock { _ = $0.takenBeforeResume?.insert(record.id) } }
            return .new(record, flow)
        } catch {
            if let clientRequestId, let found = try await store.record(clientRequestId: clientRequestId) {
                return .existing(try Admission.existing(found, flowName: flowName, arguments: arguments))
            }
            throw error
        }
    }

    public func start<F: Flow>(_ flow: F, clientRequestId: String? = nil) async throws -> FlowRecord {
        try await start(flowName: F.flowName, arguments: try FlowCoding.encode(flow), clientRequestId: clientRequestId)
    }

    public func record(_ id: FlowID) async throws -> FlowRecord? { try await store.record(id) }

    public func list(_ query: FlowQuery = FlowQuery()) async throws -> [FlowRecord] {
        try await store.list(query)
    }

    /// The progress steps a flow has reported so far, as its durable journal holds them.
    public func progress(of id: FlowID) async throws -> [FlowEvent] {
        Self.progress(try await store.journal(of: id), of: id)
    }

    private static func progress(_ journal: [JournalEntry], of id: FlowID) -> [FlowEvent] {
        journal.filter { $0.kind == EffectKind.progress }.map { .progress(id, sequence: $0.sequence, step: $0.descriptor) }
    }

    /// The flow's progress so far, then live progress and status changes; ends after a terminal
    /// status. After `cursor` (where an earlier stream of this flow left off, on this node or
    /// another), only what is new to it: see `FlowEventCursor`.
    public func events(of id: FlowID, after cursor: FlowEventCursor = .start) async throws -> AsyncStream<FlowEvent> {
        try await watch(id, withHistory: true, after: cursor).stream
    }

    /// A new watcher of the flow and the stream it feeds. With `withHistory` false the stream
    /// starts with live events only (no journal read).
    private func watch(_ id: FlowID, withHistory: Bool, after cursor: FlowEventCursor = .start)
        async throws -> (stream: AsyncStream<FlowEvent>, watcher: FlowWatcher) {
        let (stream, continuation) = AsyncStream.makeStream(of: FlowEvent.self)
        let watcher = FlowWatcher(continuation, after: cursor)
        // Registering and asking whether the flow's end is still to be published happen under one
        // lock, as publishing does: either the end reaches this watcher or the store holds it.
        let (key, endIsAhead, ends, context) = state.withLock { state in
            state.nextWatcher += 1
            state.watchers[id, default: [:]][state.nextWatcher] = watcher
            return (state.nextWatcher, state.live[id].map { !$0.hasEnded } ?? false, state.stopping || state.waitsEnded, state.live[id]?.context)
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers[id]?.removeValue(forKey: key) }
        }
        do {
            // A flow running here publishes its end to the watcher just registered: nothing to read.
            if !withHistory, endIsAhead {
                watcher.deliverHistory([], status: nil)
                if ends { watcher.finish() }
                return (stream, watcher)
            }
            guard let record = try await store.record(id) else { throw FlowEngineError.notFound(id) }
            // A flow running here has progress that is not durable yet (it is written with the
            // flow's next write) and was published before this watcher registered: its journal
            // in memory holds it. Steps published since are held back and drop out as repeats.
            let history: [FlowEvent]
            if !withHistory {
                history = []
            } else if let context {
                history = Self.progress(context.journal, of: id)
            } else {
                history = try await progress(of: id)
            }
            // Status events are delivered live; a flow that has already ended (or is in the
            // hospital) gets its status here, and so does an observer that saw another one.
            let told = record.status.isTerminal || record.status == .hospitalised || cursor.status != nil
            watcher.deliverHistory(history, status: told ? .status(id, record.status, error: record.error, attempts: record.attempts) : nil)
            if ends { watcher.finish() }  // a stopped engine runs the flow no further; a stopping process waits no more
        } catch {
            continuation.finish()
            throw error
        }
        return (stream, watcher)
    }

    /// Waits until the flow has ended or is parked in the hospital, and returns its record.
    /// With a `timeout`, or if this engine stops running the flow (shutdown), returns the record
    /// as it stands then.
    public func waitForEnd(_ id: FlowID, timeout: Duration? = nil) async throws -> FlowRecord {
        let (events, watcher) = try await watch(id, withHistory: false)
        // The time limit ends the watcher's stream; the record is then read as it stands.
        let timer = timeout.map { Deadlines.shared.schedule(after: $0) { watcher.finish() } }
        defer { timer.map(Deadlines.shared.cancel) }
        for await event in events {
            if let status = event.status, status.isTerminal || status == .hospitalised,
               let record = try await endedRecord(id),
               record.status.isTerminal || (record.status == .hospitalised && record.retryAt == nil) {
                return record
            }
        }
        try Task.checkCancellation()
        guard let record = try await store.record(id) else { throw FlowEngineError.notFound(id) }
        // The stream ended because this engine stops (the process, or its partition given up),
        // not at the time limit: the caller hears that, not a record that says `running` as if
        // the wait had run its course (found from outside).
        let cut = state.withLock { $0.stopping || $0.waitsEnded }
        if cut && !record.status.isTerminal && !(record.status == .hospitalised && record.retryAt == nil) {
            throw FlowEngineError.stopping
        }
        return record
    }

    /// Kills a flow: a running one is cancelled at its next effect; a hospitalised one ends at once.
    /// One that has asked the notary is refused (`notarising`) until it ends: its transaction may
    /// be committed, and a kill releases the inputs it holds, which the vault would then offer
    /// again though the ledger had spent them (every later spend of them a conflict). The store
    /// records the ask before it is made (`FlowWrite.notaryAsked`), so this holds across restarts
    /// and for parked flows; a flow running here also says so in memory, under the engine's lock.
    public func kill(_ id: FlowID) async throws -> FlowRecord {
        await awaitLeavingTask(id)
        // Read first: a flow that asks after the read says so in memory before it asks.
        let askedBefore = try await store.hasAskedNotary(id)
        let (task, cancel) = try state.withLock { state in
            if askedBefore || state.live[id]?.askedNotary == true { throw FlowEngineError.notarising(id) }
            state.takenBeforeResume?.insert(id)  // a start-up resume under way must not run it again
            return (state.live[id]?.task, transition(.kill, of: id, in: &state).contains(.cancel))
        }
        if let task {
            if cancel { task.cancel() }
            await task.value
        } else if let record = try await store.record(id) {
            // Killed already (a retried kill, or one racing another): done, as asked.
            if record.status == .killed { return record }
            guard !record.status.isTerminal else { throw FlowEngineError.finished(id, record.status) }
            try await setState(id, FlowState(status: .killed, error: FlowTransition.killedMessage, attempts: record.attempts,
                                             updatedAt: services.clock.now()), also: [.replayMarker(id, false)])
        }
        guard let record = try await store.record(id) else { throw FlowEngineError.notFound(id) }
        return record
    }

    /// Flow `id` is about to ask the notary: from now on it is not killed; if a kill came first,
    /// it does not ask (the kill's cancellation ends it).
    private func askingNotary(_ id: FlowID) throws {
        try state.withLock { state in
            guard state.live[id]?.machine.operatorEnd != .kill else { throw CancellationError() }
            state.live[id]?.askedNotary = true
        }
    }

    /// Parks a flow in the hospital for an operator, with `reason`: a running one is cancelled at
    /// its next effect. A parked flow is not run at start-up; it is resumed or killed like any
    /// other. (The offline tool parks flows while the node is down.)
    public func park(_ id: FlowID, reason: String) async throws -> FlowRecord {
        await awaitLeavingTask(id)
        let (task, cancel) = state.withLock { state in
            state.takenBeforeResume?.insert(id)  // a start-up resume under way must not run it again
            return (state.live[id]?.task, transition(.park(reason), of: id, in: &state).contains(.cancel))
        }
        if let task {
            if cancel { task.cancel() }
            await task.value
        } else if let record = try await store.record(id) {
            guard !record.status.isTerminal else { throw FlowEngineError.finished(id, record.status) }
            try await setState(id, FlowState(status: .hospitalised, error: reason, attempts: record.attempts,
                                             updatedAt: services.clock.now()), also: [.replayMarker(id, false)])
        }
        guard let record = try await store.record(id) else { throw FlowEngineError.notFound(id) }
        return record
    }

    /// Runs a hospitalised flow again (an operator's decision after fixing the cause). A flow
    /// running already (a retried resume, or one racing another) is returned as it stands.
    public func resume(_ id: FlowID) async throws -> FlowRecord {
        var record = try await resumableRecord(id)
        if record.status == .running { return record }
        if await awaitLeavingTask(id) {
            record = try await resumableRecord(id)
            if record.status == .running { return record }
        }
        // A task here waiting out the hospital's delay (`wake` set), or about to (its retry time
        // being recorded), runs the flow again now; one in another phase goes on as it is: it runs
        // (another resume woke it), or its end is being recorded again.
        let task = state.withLock { state -> (woken: Bool, busy: FlowStatus?) in
            guard let live = state.live[id] else { return (false, nil) }
            if let wake = live.wake {
                wake.yield()
            } else if live.machine.phase == .waiting {
                state.live[id]?.resumeAsked = true
            } else if case .recordWaiting(let end) = live.machine.phase {
                return (false, end.status)
            } else {
                return (false, .running)
            }
            return (true, nil)
        }
        // Running again: the hospital's reason no longer describes it (the stored state drops it too).
        record.status = .running
        record.retryAt = nil
        record.error = nil
        // Not hospitalised any more, whatever the store still says: two resumes at once answered
        // one `running` and the other the stale hospitalised record (found by racing clients).
        if let busy = task.busy, busy != .running { throw FlowEngineError.notHospitalised(id, busy) }
        if task.woken || task.busy == .running { return record }
        // Left out of a start-up resume under way, which may read it as running and would launch
        // it again after it ended (`takenBeforeResume`).
        state.withLock { _ = $0.takenBeforeResume?.insert(id) }
        // Marked like a replay at start-up: if this flow takes the node down, it is parked again.
        try await setState(id, FlowState(status: .running, attempts: record.attempts, updatedAt: services.clock.now()),
                           also: [.replayMarker(id, true)])
        state.withLock { _ = $0.marked.insert(id) }
        launch(record, journal: try await store.journal(of: id), replayMarked: true)
        return record
    }

    /// The flow's record if it is hospitalised or running.
    private func resumableRecord(_ id: FlowID) async throws -> FlowRecord {
        guard let record = try await store.record(id) else { throw FlowEngineError.notFound(id) }
        guard record.status == .hospitalised || record.status == .running else { throw FlowEngineError.notHospitalised(id, record.status) }
        return record
    }

    /// Waits for the task of a flow that is recording its end, or has recorded it, to leave
    /// `live`; true if there was one. An operator's kill, park or resume then acts on the flow as
    /// the store holds it: one that came in that moment (the store showing the flow parked, its
    /// task still registered) changed nothing.
    @discardableResult
    private func awaitLeavingTask(_ id: FlowID) async -> Bool {
        // A flow's end is announced only in these phases (`hasEnded` follows them).
        let leaving = state.withLock { state -> Task<Void, Never>? in
            guard let live = state.live[id] else { return nil }
            switch live.machine.phase {
            case .recording, .ended: return live.task
            default: return nil
            }
        }
        guard let leaving else { return false }
        await leaving.value
        return true
    }

    /// Draining mode for upgrades: no new flows start; running ones finish.
    public func setDraining(_ draining: Bool) {
        state.withLock { $0.draining = draining }
        logger.info(draining ? "draining: no new flows will start" : "draining ended")
    }

    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Ends every wait for a flow (`waitForEnd` throws `stopping` unless the flow has ended, an
    /// event stream ends), now and from now on, while the flows run on: the process is shutting down, and its
    /// HTTP server finishes the requests under way before the engine stops. A long poll or an
    /// event stream of a flow that ran on held SIGTERM back until the flow ended.
    public func endWaits() {
        let watchers = state.withLock { state in
            state.waitsEnded = true
            return state.watchers.values.flatMap(\.values)
        }
        for watcher in watchers { watcher.finish() }
    }

    /// True once `endWaits` was called.
    public var waitsEnded: Bool { state.withLock { $0.waitsEnded } }

    /// True once `stop` has begun.
    public var isStopping: Bool { state.withLock { $0.stopping } }

    /// Flows running in this process now.
    public var runningCount: Int { state.withLock { $0.live.count } }

    // MARK: Running flows

    /// Runs the flow unless it runs already or the engine is stopping (then returns false).
    /// `journal`: nil if the store says, before the first run, whether the flow exists and
    /// what its journal holds. `flow`: the flow, already decoded; `start`: its start, to be
    /// written with its first commit. `replayMarked`: its replay marker is set, to be cleared by
    /// its first durable write. The flow's state machine (`FlowTransition`) starts here.
    @discardableResult
    private func launch(_ record: FlowRecord, journal: [JournalEntry]?, flow: (any Flow)? = nil,
                        start: DeferredStart? = nil, replayMarked: Bool = false) -> Bool {
        // The task is made and registered under one lock: `kill` then always finds the task of a
        // live flow (a flow that ran ahead of its registration could otherwise be marked killed
        // in the store while it went on running). The task cannot touch `state` before we unlock.
        state.withLock { state in
            guard !state.stopping, state.live[record.id] == nil else { return false }
            let task = Task {
                await self.execute(record, journal: journal, flow: flow, start: start)
                self.leave(record.id)
            }
            let machine = FlowTransition.State(attempts: record.attempts, startUnwritten: start != nil, clearsMarker: replayMarked)
            state.live[record.id] = Live(task: task, machine: machine)
            return true
        }
    }

    /// Takes an ended task out of `live`. A task that stopped without publishing an end (the
    /// engine stopped, or its last state could not be written) ends its watchers' streams, so a
    /// waiter reads the record as it stands instead of waiting for an event that never comes.
    private func leave(_ id: FlowID) {
        let stranded = state.withLock { state -> [FlowWatcher] in
            guard let live = state.live.removeValue(forKey: id), !live.hasEnded else { return [] }
            return Array((state.watchers.removeValue(forKey: id) ?? [:]).values)
        }
        for watcher in stranded { watcher.finish() }
    }

    /// The flow's task: feeds its state machine (`FlowTransition`) the outcome of each action it
    /// asked for, until it asks to end. Kill, park and stop reach the machine from other tasks,
    /// under the same lock.
    private func execute(_ record: FlowRecord, journal: [JournalEntry]?, flow decoded: (any Flow)?, start: DeferredStart?) async {
        let id = record.id
        // Whatever stops the task before its first commit, the starter is not left waiting.
        defer { start?.settle(.failure(FlowEngineError.stopping)) }
        var event: FlowTransition.Event
        var flow: (any Flow)?
        do {
            flow = try decoded ?? registry.decode(record.flowName, arguments: record.arguments)
            event = .begin(journal: journal)
        } catch {
            event = .undecodable("\(error)")
        }
        var context: FlowContext?
        // The error the machine was last told of, for the deferred start's waiter.
        var failure: (any Error)?
        func failed(_ error: any Error) -> FlowTransition.Event {
            failure = error
            return .failed(error, startWritten: start?.isCreated ?? false)
        }
        while true {
            var next: FlowTransition.Event?
            for action in feed(event, to: id) {
                switch action {
                case .readDurable:
                    do { next = try await readDurable(id) } catch { next = failed(error) }
                case .run(let journal, let carriesStart, let clearsMarker):
                    guard let flow else { return }
                    let made = FlowContext(flowId: id, journal: journal, services: services, committer: committer,
                                           start: carriesStart ? start : nil, clearsReplayMarker: clearsMarker,
                                           askingNotary: { [weak self] in try self?.askingNotary(id) },
                                           markerCleared: { [weak self] in self?.markerCleared(id) }) { [weak self] entry in
                        guard entry.kind == EffectKind.progress else { return }
                        self?.publish(.progress(id, sequence: entry.sequence, step: entry.descriptor))
                    }
                    if let responder = flow as? any ResponderFlow { made.adopt(responder.session) }
                    context = made
                    state.withLock { $0.live[id]?.context = made }
                    do { next = .returned(try await flow.runEncoded(made)) } catch { next = failed(error) }
                case .commitEnd(let final):
                    do {
                        try context?.finishReplay()
                        try await context?.commitPending(plus: writes(id, final, context?.sessionFarewell(final) ?? []))
                        next = .committed
                    } catch {
                        next = failed(error)
                    }
                case .keepRecorded:
                    _ = try? await context?.commitPending()
                case .failStart:
                    // A body cut by this engine's stop says so, not as its task's cancellation.
                    let stopped = failure is CancellationError && isStopping
                    if let failure { start?.settle(.failure(stopped ? FlowEngineError.stopping : failure)) }
                case .record(let flowState):
                    await settle(id, flowState)
                case .recordIfUnfinished(let flowState):
                    if let stored = try? await store.record(id), !stored.status.isTerminal { await settle(id, flowState) }
                case .recordEnd(let flowState, let ifUnfinished):
                    do {
                        if ifUnfinished, let stored = try await store.record(id), stored.status.isTerminal {
                            announce(id, FlowState(status: stored.status, result: stored.result, error: stored.error,
                                                   attempts: stored.attempts, updatedAt: stored.updatedAt), base: stored)
                        } else {
                            logState(id, flowState)
                            try await setState(id, flowState, farewell: context?.sessionFarewell(flowState) ?? [])
                        }
                        next = .committed
                    } catch {
                        logger.error("could not record a flow's end; will try again", metadata: ["flow": "\(id)", "error": "\(error)"])
                        next = failed(error)
                    }
                case .announce(let final):
                    announce(id, final, base: record)
                case .announceStored(let stored):
                    announce(id, FlowState(status: stored.status, result: stored.result, error: stored.error, attempts: stored.attempts,
                                           updatedAt: stored.updatedAt), base: stored)
                case .wait(let delay):
                    next = await waitOrWake(id, delay)
                case .cancel:
                    break  // asked for by kill, park and stop, whose callers cancel this task
                case .end:
                    return
                }
            }
            guard let next else { return }
            event = next
        }
    }

    /// Waits out `delay`, or less if an operator resumes the flow meanwhile (`timerFired`
    /// either way); `waitCancelled` if the task is cancelled (kill, park, stop).
    private func waitOrWake(_ id: FlowID, _ delay: Duration) async -> FlowTransition.Event {
        let (woken, wake) = AsyncStream.makeStream(of: Void.self)
        // Only the hospital's retry is an operator's to hasten, not a retried record of an end.
        let resumed = state.withLock { state -> Bool in
            guard state.live[id]?.machine.phase == .waiting else { return false }
            if state.live[id]?.resumeAsked == true {
                state.live[id]?.resumeAsked = false  // once: a later stay in the hospital waits again
                return true
            }
            state.live[id]?.wake = wake
            return false
        }
        if resumed { return .timerFired }
        defer { state.withLock { $0.live[id]?.wake = nil } }
        let clock = services.clock
        let fired = await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await clock.sleep(for: delay)) != nil }
            group.addTask { await woken.first { _ in true } != nil }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        return fired && !Task.isCancelled ? .timerFired : .waitCancelled
    }

    /// Feeds `event` to the flow's state machine and returns the actions it asks for.
    private func feed(_ event: FlowTransition.Event, to id: FlowID) -> [FlowTransition.Action] {
        state.withLock { transition(event, of: id, in: &$0) }
    }

    /// Under the lock, so that events from the flow's task, from operators and from `stop` are ordered.
    private func transition(_ event: FlowTransition.Event, of id: FlowID, in state: inout State) -> [FlowTransition.Action] {
        guard let machine = state.live[id]?.machine else { return [] }
        let (next, actions) = FlowTransition.transition(event, machine, now: services.clock.now(), policy: configuration.hospital)
        state.live[id]?.machine = next
        return actions
    }

    /// What the store holds of the flow, before a run that follows a failure: a commit that
    /// failed may have been made (the database crashed, or the connection broke, before its
    /// answer), so only the store knows what is durable. A store that cannot be read is a
    /// transient error.
    private func readDurable(_ id: FlowID) async throws -> FlowTransition.Event {
        do {
            guard let stored = try await store.record(id) else { return .read(.absent) }
            if stored.status.isTerminal { return .read(.ended(stored)) }
            return .read(.unfinished(try await store.journal(of: id)))
        } catch {
            throw TransientFlowError("the flow store could not be read: \(error)", cause: error)
        }
    }

    /// Records a state best effort (failing, it is written again after a restart): a flow's
    /// running state, its retry marker, or an undecodable flow parked.
    private func settle(_ id: FlowID, _ flowState: FlowState) async {
        logState(id, flowState)
        do {
            try await setState(id, flowState)
        } catch {
            logger.error("could not record a flow's state", metadata: ["flow": "\(id)", "error": "\(error)"])
        }
    }

    private func logState(_ id: FlowID, _ flowState: FlowState) {
        switch flowState.status {
        case .failed: logger.info("flow failed", metadata: ["flow": "\(id)", "error": "\(flowState.error ?? "")"])
        case .hospitalised where flowState.retryAt == nil: logger.warning("flow parked in the hospital", metadata: ["flow": "\(id)", "reason": "\(flowState.error ?? "")"])
        case .hospitalised: logger.info("flow hospitalised, will retry", metadata: ["flow": "\(id)", "attempt": "\(flowState.attempts)",
                                                                                 "error": "\(flowState.error ?? "")"])
        default: break
        }
    }

    private func setState(_ id: FlowID, _ flowState: FlowState, farewell: [LocalEffect] = [], also: [FlowWrite] = []) async throws {
        _ = try await committer.commit(writes(id, flowState, farewell) + also)
        announce(id, flowState)
    }

    /// The writes of a status change: an ended flow also releases what it holds (`endEffects`)
    /// and has its journal compacted.
    private func writes(_ id: FlowID, _ flowState: FlowState, _ farewell: [LocalEffect] = []) -> [FlowWrite] {
        guard flowState.status.isTerminal else { return [.state(id, flowState, [])] }
        return [.state(id, flowState, configuration.endEffects(id) + farewell), .compact(id)]
    }

    /// Tells observers of a durable state change; with `base` (the flow's record) a completion is
    /// remembered for waiters before they hear of it.
    private func announce(_ id: FlowID, _ flowState: FlowState, base: FlowRecord? = nil) {
        if let base, flowState.status == .completed { remember(base, flowState) }
        let parked = flowState.status == .hospitalised && flowState.retryAt == nil
        publish(.status(id, flowState.status, error: flowState.error, attempts: flowState.attempts),
                ends: flowState.status.isTerminal || parked)
        if flowState.status.isTerminal || parked { configuration.settled(id) }
    }

    /// `ends`: the flow's task publishes nothing after this event.
    private func publish(_ event: FlowEvent, ends: Bool = false) {
        let watchers = state.withLock { state -> [FlowWatcher] in
            let found = Array(state.watchers[event.flowId, default: [:]].values)
            if event.isFinal { state.watchers[event.flowId] = nil }
            if ends { state.live[event.flowId]?.hasEnded = true }
            return found
        }
        for watcher in watchers { watcher.deliver(event) }
    }

    /// Keeps a completed flow's record for waiters (the last 4,096), once it is durable.
    private func remember(_ record: FlowRecord, _ final: FlowState) {
        var completed = record
        completed.status = final.status
        completed.result = final.result
        completed.error = final.error
        completed.attempts = final.attempts
        completed.retryAt = final.retryAt
        completed.updatedAt = final.updatedAt
        state.withLock { state in
            state.completed[record.id] = completed
            state.completedOrder.append(record.id)
            if state.completedOrder.count > 4_096 {
                for old in state.completedOrder.prefix(2_048) { state.completed[old] = nil }
                state.completedOrder.removeFirst(2_048)
            }
        }
    }

    private func endedRecord(_ id: FlowID) async throws -> FlowRecord? {
        if let completed = state.withLock({ $0.completed[id] }) { return completed }
        return try await store.record(id)
    }
}
