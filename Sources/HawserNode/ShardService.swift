import Coordination
import HawserCore
import Logging
import ServiceLifecycle
import Synchronization

/// What a process owning a shard does in each term, for `ShardService`: the node runs a flow
/// engine, the notary its appender and replica. Every write of a term goes to a store fenced by
/// the shard's `WriteFence`; a refused write (`stale_epoch`, `not_owner`) is reported to
/// `failed`, as is a failure that ends the term's work: the process stops it and steps down.
protocol ShardWork: Sendable {
    associatedtype Term: Sendable
    /// The claiming write: the fencing check alone, in a transaction of its own.
    func claim() async throws
    /// The term's work, made but not started; it reports refused writes and failures to `failed`.
    func makeTerm(failed: @escaping @Sendable (String) -> Void) -> Term
    /// Starts `term` and returns once it serves (the node resumed its flows, the notary caught up).
    func start(_ term: Term) async throws
    /// Stops `term` at once; its fence has been released already, so only what the stopped work
    /// leaves behind is written (its replay markers cleared, unfenced: `FlowStore.clearReplayMarkers`).
    func stop(_ term: Term) async
}

/// A hot-warm process's ownership of its shard: the I/O shell around `ShardCore`. It stands in
/// the election, and as the core decides holds and releases the write fence, makes the claiming
/// write, starts the work of each term (`ShardWork`: the node resumes every unfinished flow from
/// the shared journal, the notary catches up from the shared log) and stops it, and tells the API
/// whether it serves (`ServingState`). Every event is handled by one task, in order; the slow
/// actions (claim, start, stop) run as child tasks that report back, so a lost election releases
/// the fence at once even while a start is under way. The election hears when a term's work starts
/// and once it has stopped (`Election.workStarted`, `workStopped`): leadership the process gives up
/// of its own accord is released in the store only after the work's last write (`ReleaseHold`).
final class ShardService<Work: ShardWork>: Service, Sendable {
    enum Event: Sendable {
        case status(ElectionStatus)
        case claimed(Epoch), claimFailed(Epoch, String, refused: Bool)
        case workStarted(Epoch), workFailed(Epoch, String)
        case workStopped
        case writeRefused(String)
        /// Graceful shutdown: give the shard up (work first, then the election), then end.
        case shutdown
        /// The active process `id` advertises `url` first.
        case address(id: String, url: String?)
    }

    private let election: any Election
    private let administration: any ElectionAdministration
    private let fence: WriteFence
    private let work: Work
    private let serving: ServingState<Work.Term>
    private let timeout: Duration
    private let logger: Logger
    private let events: AsyncStream<Event>
    private let input: AsyncStream<Event>.Continuation

    private struct Shell {
        var core = ShardCore()
        var term: Work.Term?
        var addresses: [String: String] = [:]
        var lookingUp: Set<String> = []
    }
    private let shell = Mutex(Shell())

    init(stand: ShardStand, fence: WriteFence, work: Work, serving: ServingState<Work.Term>) {
        self.election = stand.election
        self.administration = stand.administration
        self.fence = fence
        self.work = work
        self.serving = serving
        serving.confirmed { [election = stand.election] in election.leadsNow() }
        self.timeout = stand.timeout
        self.logger = stand.logger
        (events, input) = AsyncStream.makeStream(of: Event.self)
    }

    func run() async throws {
        do {
            // Not cancelled at once: an active process first stops its work, then releases the shard
            // (a successor that claimed sooner would find the work's replay markers), then ends.
            try await withGracefulShutdownHandler {
                try await withTaskCancellationHandler {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await self.election.run() }
                        group.addTask { for await status in self.election.statuses() { self.input.yield(.status(status)) } }
                        group.addTask { await self.process() }
                        defer { group.cancelAll() }
                        // The election gave up (a duplicate id): so does the node. Or shut down.
                        try await group.next()
                    }
                } onCancel: {
                    // Before anything else stops: not one more write of its work commits.
                    self.fence.release()
                }
            } onGracefulShutdown: {
                self.input.yield(.shutdown)
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
        await stopTerm()
        await administration.close()
    }

    /// Handles events one at a time until cancelled; slow actions run in the group and report back.
    /// The group discards each child as it ends: the loop never collects, and a process that
    /// stands for months starts a child for every claim, start, stop and address look-up.
    private func process() async {
        await withDiscardingTaskGroup { group in
            for await event in events {
                let actions = shell.withLock { shell in transition(&shell, event) }
                if let leader = publish() { lookUp(leader, in: &group) }
                for action in actions { perform(action, in: &group) }
                if actions.contains(.finish) { break }
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
        case .shutdown: return shell.core.shutdown()
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
                if let term = shell.term { return (.active(term), lookUp) }
                return (.takingOver("starting its work"), lookUp)
            case .claiming(let epoch): return (.takingOver("claiming the shared database at epoch \(epoch)"), lookUp)
            case .starting(let epoch): return (.takingOver("starting its work at epoch \(epoch) (resuming flows, catching up with the log)"), lookUp)
            case .standby, .stopping: return (.standby(active: leader.flatMap { shell.addresses[$0] }), lookUp)
            }
        }
        serving.set(state)
        return lookUp
    }

    /// The active process's first advertised address, from the election's snapshot (once per leader;
    /// a few tries, since reading the snapshot may open a connection of its own, which a loaded
    /// machine or store can make slow).
    private func lookUp(_ id: String, in group: inout DiscardingTaskGroup) {
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

    private func perform(_ action: ShardCore.Action, in group: inout DiscardingTaskGroup) {
        switch action {
        case .hold(let epoch):
            fence.hold(epoch)
            logger.info("won the shard: claiming the shared database", metadata: ["epoch": "\(epoch)"])
        case .release:
            fence.release()
        case .claim(let epoch, let retry):
            group.addTask { [work, input, timeout, logger] in
                do {
                    if retry { try await Task.sleep(for: timeout) }
                    guard try await within(timeout, { try await work.claim() }) != nil else { throw ClaimTookTooLong(timeout: timeout) }
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
            // Leadership given up from now on is released only once the term stopped. Given up
            // already (the status saying so is on its way): the term must not start.
            guard election.workStarted(epoch: epoch) else {
                input.yield(.workFailed(epoch, "leadership at epoch \(epoch) ended before its work started"))
                return
            }
            // Made here, not in the child task, so that a `stopWork` that follows always finds it.
            let term = work.makeTerm { [input] problem in input.yield(.writeRefused(problem)) }
            shell.withLock { $0.term = term }
            group.addTask { [work, input, logger] in
                do {
                    try await work.start(term)
                    logger.info("active: serving", metadata: ["epoch": "\(epoch)"])
                    input.yield(.workStarted(epoch))
                } catch {
                    input.yield(.workFailed(epoch, "\(error)"))
                }
            }
        case .stopWork:
            group.addTask { [input] in
                await self.stopTerm()
                input.yield(.workStopped)
            }
        case .stepDown(let reason):
            logger.warning("stepping down", metadata: ["reason": "\(reason)"])
            group.addTask { await self.election.resign() }
        case .finish:
            break  // `process()` returns, and the group around it ends
        }
    }

    private func stopTerm() async {
        let term = shell.withLock { shell -> Work.Term? in
            defer { shell.term = nil }
            return shell.term
        }
        guard let term else { return }
        await work.stop(term)
        election.workStopped()  // its last write is made: a successor may claim now
        logger.info("work stopped: standby")
    }
}

/// The claiming write did not answer in time. It is a write to the shared database, not to the
/// coordination store: the database is slow, or a former owner's transaction still holds the
/// fencing row (a stopped process's, until the server ends it).
struct ClaimTookTooLong: Error, CustomStringConvertible {
    let timeout: Duration
    var description: String {
        "the claiming write to the shared database took longer than \(timeout) (the database is slow, or a former owner's transaction still holds the fencing row)"
    }
}
