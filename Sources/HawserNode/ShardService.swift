import Coordination
import Flows
import Logging
import ServiceLifecycle
import Synchronization

/// A hot-warm node's ownership of its shard: the I/O shell around `ShardCore`. It stands in the
/// election, and as the core decides holds and releases the write fence, makes the claiming
/// write, starts a flow engine per term (which resumes every unfinished flow from the shared
/// journal) and stops it, and tells the RPC API whether it serves (`ServingState`). Every event is
/// handled by one task, in order; the slow actions (claim, resume, stop) run as child tasks that
/// report back, so a lost election releases the fence at once even while a resume is under way.
final class ShardService: Service, Sendable {
    enum Event: Sendable {
        case status(ElectionStatus)
        case claimed(Epoch), claimFailed(Epoch, String, refused: Bool)
        case workStarted(Epoch), workFailed(Epoch, String)
        case workStopped
        case writeRefused(String)
        /// The active node `id` advertises `url` first.
        case address(id: String, url: String?)
    }

    private let election: any Election
    private let administration: any ElectionAdministration
    private let fence: WriteFence
    /// The node database's flow store, fenced by `fence`.
    private let store: any FlowStore
    private let makeEngine: @Sendable (any FlowStore) -> FlowEngine
    private let serving: ServingState
    private let timeout: Duration
    private let logger: Logger
    private let events: AsyncStream<Event>
    private let input: AsyncStream<Event>.Continuation

    private struct Shell {
        var core = ShardCore()
        var engine: FlowEngine?
        /// Carried from one term's engine to the next.
        var draining = false
        var addresses: [String: String] = [:]
        var lookingUp: Set<String> = []
    }
    private let shell = Mutex(Shell())

    /// `makeEngine` makes a term's flow engine on the store it is given (which reports refused writes).
    init(election: any Election, administration: any ElectionAdministration, fence: WriteFence, store: any FlowStore,
         makeEngine: @escaping @Sendable (any FlowStore) -> FlowEngine, serving: ServingState, timeout: Duration, logger: Logger) {
        self.election = election
        self.administration = administration
        self.fence = fence
        self.store = store
        self.makeEngine = makeEngine
        self.serving = serving
        self.timeout = timeout
        self.logger = logger
        (events, input) = AsyncStream.makeStream(of: Event.self)
    }

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await withTaskCancellationHandler {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await self.election.run() }
                        group.addTask { for await status in self.election.statuses() { self.input.yield(.status(status)) } }
                        group.addTask { await self.process() }
                        defer { group.cancelAll() }
                        try await group.next()  // the election gave up (a duplicate id): so does the node
                    }
                } onCancel: {
                    // Before anything else stops: not one more write of this process commits.
                    self.fence.release()
                }
            }
        } catch {
            await finish()
            throw error
        }
        await finish()
    }

    /// Stops owning anything: fence first (also when the election gave up, without a cancellation).
    private func finish() async {
        fence.release()
        serving.set(.standby(active: nil))
        await stopEngine()
        await administration.close()
    }

    /// Handles events one at a time until cancelled; slow actions run in the group and report back.
    private func process() async {
        await withTaskGroup(of: Void.self) { group in
            for await event in events {
                let actions = shell.withLock { shell in transition(&shell, event) }
                if let leader = publish() { lookUp(leader, in: &group) }
                for action in actions { perform(action, in: &group) }
            }
            group.cancelAll()
        }
    }

    private func transition(_ shell: inout Shell, _ event: Event) -> [ShardCore.Action] {
        switch event {
        case .status(let status):
            if status.leader != shell.core.election.leader { shell.lookingUp = [] }  // a new leader: look again
            return shell.core.status(status)
        case .claimed(let epoch): return shell.core.claimed(epoch)
        case .claimFailed(let epoch, let problem, let refused): return shell.core.claimFailed(epoch, problem: problem, refused: refused)
        case .workStarted(let epoch): return shell.core.workStarted(epoch)
        case .workFailed(let epoch, let problem): return shell.core.workFailed(epoch, problem: problem)
        case .workStopped: return shell.core.workStopped()
        case .writeRefused(let problem): return shell.core.writeRefused(problem: problem)
        case .address(let id, let url):
            // Not found: asked again when the leader changes, not in a loop.
            if let url {
                shell.addresses[id] = url
                shell.lookingUp.remove(id)
            }
            return []
        }
    }

    /// Tells the API what it serves with, from the core's phase. Returns the active node whose
    /// address is to be looked up.
    private func publish() -> String? {
        let (state, lookUp) = shell.withLock { shell -> (ServingState.State, String?) in
            let leader = shell.core.otherLeader
            var lookUp: String?
            if let leader, shell.addresses[leader] == nil, !shell.lookingUp.contains(leader) {
                shell.lookingUp.insert(leader)
                lookUp = leader
            }
            switch shell.core.phase {
            case .active:
                if let engine = shell.engine { return (.active(engine), lookUp) }
                return (.takingOver("starting the flow engine"), lookUp)
            case .claiming(let epoch): return (.takingOver("claiming the node database at epoch \(epoch)"), lookUp)
            case .starting(let epoch): return (.takingOver("resuming unfinished flows at epoch \(epoch)"), lookUp)
            case .standby, .stopping: return (.standby(active: leader.flatMap { shell.addresses[$0] }), lookUp)
            }
        }
        serving.set(state)
        return lookUp
    }

    /// The active node's first advertised address, from the election's snapshot (once per leader;
    /// a few tries, since reading the snapshot may open a connection of its own, which a loaded
    /// machine or store can make slow).
    private func lookUp(_ id: String, in group: inout TaskGroup<Void>) {
        group.addTask { [administration, input, timeout] in
            for attempt in 0..<10 {
                if attempt > 0 { try? await Task.sleep(for: timeout) }
                if Task.isCancelled { return }
                let found = try? await withDeadline(timeout * 5, "reading the election") {
                    try await administration.snapshot().candidates.first { $0.id == id }?.addresses.first
                }
                if let url = found ?? nil {
                    input.yield(.address(id: id, url: url))
                    return
                }
            }
            input.yield(.address(id: id, url: nil))
        }
    }

    private func perform(_ action: ShardCore.Action, in group: inout TaskGroup<Void>) {
        switch action {
        case .hold(let epoch):
            fence.hold(epoch)
            logger.info("won the node's shard: claiming the node database", metadata: ["epoch": "\(epoch)"])
        case .release:
            fence.release()
        case .claim(let epoch, let retry):
            group.addTask { [store, input, timeout, logger] in
                do {
                    if retry { try await Task.sleep(for: timeout) }
                    // An empty commit: the fencing check alone, in a transaction of its own.
                    _ = try await withDeadline(timeout, "the claiming write") { try await store.commit([]) }
                    input.yield(.claimed(epoch))
                } catch is CancellationError {
                    return
                } catch {
                    let refused = (error as? CoordinationError)?.isFencingRefusal ?? false
                    if !refused, !retry { logger.warning("the claiming write failed; trying again", metadata: ["problem": "\(error)"]) }
                    input.yield(.claimFailed(epoch, "\(error)", refused: refused))
                }
            }
        case .startWork(let epoch):
            // Made here, not in the child task, so that a `stopWork` that follows always finds it.
            let engine = makeEngine(FencedFlowStore(base: store) { [input] error in input.yield(.writeRefused(error.description)) })
            shell.withLock { shell in
                if shell.draining { engine.setDraining(true) }
                shell.engine = engine
            }
            group.addTask { [input, logger] in
                do {
                    try await engine.resumeUnfinished(createdBefore: nil)
                    logger.info("active: serving", metadata: ["epoch": "\(epoch)"])
                    input.yield(.workStarted(epoch))
                } catch {
                    input.yield(.workFailed(epoch, "\(error)"))
                }
            }
        case .stopWork:
            group.addTask { [input] in
                await self.stopEngine()
                input.yield(.workStopped)
            }
        case .stepDown(let reason):
            logger.warning("stepping down", metadata: ["reason": "\(reason)"])
            group.addTask { await self.election.resign() }
        }
    }

    private func stopEngine() async {
        let engine = shell.withLock { shell -> FlowEngine? in
            defer { shell.engine = nil }
            if let engine = shell.engine { shell.draining = engine.isDraining }
            return shell.engine
        }
        guard let engine else { return }
        await engine.stop()
        logger.info("flow engine stopped: standby")
    }
}
