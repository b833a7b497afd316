import Coordination
import HawserCore
import HawserWire
import Logging
import ServiceLifecycle
import Synchronization

/// Consumes the log in order and applies it to this replica's store: each pass takes every
/// pending entry (up to a limit), checks that each continues the chain it has verified so far
/// (`LogChain`), decides them with `UniquenessChecker`, and commits effects and chain head in one
/// transaction. The answers wait in the `AnswerGate` until the quorum confirms them. Restarting
/// resumes from the stored head, so a lost store is rebuilt by replaying the log from the start.
/// At an entry that breaks the chain the replica stops: it applies nothing more and says why.
public final class Replica: Service, Sendable {
    private let log: any ReplicatedLog
    private let store: any NotaryStore
    private let codec: ReplicaCodec
    private let gate: AnswerGate
    public let quorum: Quorum
    private let maxEntriesPerApply: Int
    private let metrics: NotaryMetrics
    private let logger: Logger
    private let thread: DedicatedThread?
    /// The log's end when the replica started; it is caught up once it has applied that far.
    private let catchUpTarget = Mutex<UInt64?>(nil)
    /// The store's head position as read at start.
    private let storeHead = Atomic<UInt64>(0)
    /// A store that keeps failing is logged once per 10 s, not at every try.
    private let storeFailureLog = RefusalLog(interval: .seconds(10))
    private let storeFailure = Mutex<String?>(nil)

    /// `thread`: the thread to run on, shared with other loops (each calls its `stop`); by
    /// default the replica makes one of its own.
    public init(log: any ReplicatedLog, store: any NotaryStore, codec: ReplicaCodec, gate: AnswerGate, quorum: Quorum,
                maxEntriesPerApply: Int, metrics: NotaryMetrics, logger: Logger, thread: DedicatedThread? = nil) {
        self.thread = thread
        self.log = log
        self.store = store
        self.codec = codec
        self.gate = gate
        self.quorum = quorum
        self.maxEntriesPerApply = maxEntriesPerApply
        self.metrics = metrics
        self.logger = logger
    }

    /// The last log position applied to the store (as read at start until the replica starts).
    public var appliedPosition: UInt64 { max(quorum.appliedSignal.value, storeHead.load(ordering: .relaxed)) }

    /// Returns once the replica has applied `position`.
    public func waitUntilApplied(_ position: UInt64) async throws {
        if position > 0 { try await quorum.appliedSignal.wait(beyond: position - 1) }
    }

    /// Why the store refused the last entries the replica tried to apply (they are tried again);
    /// nil once it applies. The replica is not ready meanwhile: every request to it times out.
    public var storeProblem: String? { storeFailure.withLock { $0 } }

    /// `/health/ready`'s sentence for a `storeProblem`.
    public static func storeProblemMessage(_ problem: String) -> String {
        "the replica's store cannot apply log entries (trying again; requests time out meanwhile): \(problem)"
    }

    /// True once the replica has applied everything the log held when it started.
    public var isCaughtUp: Bool {
        catchUpTarget.withLock { $0 }.map { appliedPosition >= $0 } ?? false
    }

    public func run() async throws {
        // Cancelled by a graceful shutdown too: the log's end waits for its servers, for as long
        // as they cannot be reached.
        let start: ChainHead, target: UInt64, applied: LogEntry?
        do {
            (start, target, applied) = try await cancelWhenGracefulShutdown {
                let head = try await self.store.head()
                // What the store holds is known before the log answers (a majority of its
                // servers may be down): readiness and the metric say so, not 0, meanwhile.
                self.metrics.appliedPosition.record(Int64(head.position))
                self.storeHead.store(head.position, ordering: .relaxed)
                let logger = self.logger
                let waiting = Deadlines.shared.schedule(after: .seconds(10)) {
                    logger.warning("the replica has read its store and still waits for the log to answer (are its servers up?)",
                                   metadata: ["applied": "\(head.position)"])
                }
                defer { Deadlines.shared.cancel(waiting) }
                let end = try await self.log.lastPosition(applied: head.position)
                return (head, end, head.position > 0 ? try await self.log.entry(at: head.position) : nil)
            }
        } catch is CancellationError {
            return logger.info("replica stopped before it started: the log could not be read")
        }
        // This process runs with another key than the log's: it fails, so that the process stops
        // (single) or its term ends and another process, perhaps with the right key, takes over
        // (hot-warm, hot-cold). The break is recorded first, for whoever waits for the start.
        if let applied, codec.batch(fromEntry: applied.payload) == nil {
            let broken = LogBreak.unauthenticApplied(applied, head: start)
            stop(at: broken)
            quorum.start(at: start)
            throw broken
        }
        // A log that ends before what this replica applied lost entries (a deleted log file, or
        // an older copy): its appender would say so at the first request, readiness from the
        // start (it said ready until then, found from outside). Recorded before the quorum
        // starts, so that no one sees it started and healthy in between.
        if case .diverged(let evidence) = AppenderCore.resync(logEnd: target, applied: start) { stop(at: evidence) }
        quorum.start(at: start)
        catchUpTarget.withLock { $0 = target }
        if start.position >= target { quorum.caughtUp() }
        logger.info("replica starting", metadata: ["applied": "\(start.position)", "logEnd": "\(target)"])
        let thread = self.thread ?? DedicatedThread(name: "hawser-replica")
        defer { thread.stop() }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await self.watchLogEnd() }
                try await withTaskExecutorPreference(thread) {
                    try await self.applyLoop(from: start, caughtUpAt: target)
                }
                group.cancelAll()
            }
        } catch is CancellationError {
            // Shutdown: an interrupted batch was rolled back and is applied again on restart.
        }
        logger.info("replica stopped", metadata: ["applied": "\(appliedPosition)"])
    }

    private func applyLoop(from start: ChainHead, caughtUpAt target: UInt64) async throws {
        try await cancelWhenGracefulShutdown {
            var head = start, caughtUp = start.position >= target
            var failures = 0
            // A failure to read the log (its database away) or to apply it (a full disk, a
            // database away) is tried again after a pause: the transaction rolled back, and the
            // same entries are read and applied again. Requests wait meanwhile, and time out. The
            // process does not stop: a node's flows then wait in its hospital, and all resumes
            // once the store writes again. Only the store's failure is kept for readiness: a
            // read that waits for entries does not come back while the log is idle, so nothing
            // would clear a read's.
            func pause(after error: any Error, store: Bool) async throws {
                failures += 1
                if store { self.storeFailure.withLock { $0 = "\(error)" } }
                if let unlogged = self.storeFailureLog.admit("apply", at: .now) {
                    self.logger.error("the replica could not read or apply log entries; trying again",
                                      metadata: ["position": "\(head.position + 1)", "error": "\(error)",
                                                 "failures": "\(failures)", "unlogged": "\(unlogged)"])
                }
                try await Task.sleep(for: .milliseconds(min(5_000, 50 << min(failures, 7))))
            }
            while !Task.isCancelled {
                let entries: [LogEntry]
                do {
                    entries = try await self.log.read(after: head.position, limit: self.maxEntriesPerApply)
                } catch let error as any PossiblyTransientError where error.isTransient {
                    // Only a failure that says it may pass: a stream that lost entries, or one the
                    // replica is ahead of, stops it for the operator to restore.
                    try await pause(after: error, store: false)
                    continue
                }
                guard !entries.isEmpty else { continue }
                if self.quorum.isBroken {
                    // Stopped by `watchLogEnd` while this read waited: nothing more is applied.
                    try await gracefulShutdown()
                    return
                }
                let next: ChainHead, broken: LogBreak?
                do {
                    (next, broken) = try await self.apply(entries, after: head)
                } catch let error where !(error is CancellationError) && !(error is CoordinationError) {
                    // A fencing refusal (another process owns the store now) still ends the run.
                    try await pause(after: error, store: true)
                    continue
                }
                if failures > 0 { self.storeFailure.withLock { $0 = nil } }
                failures = 0
                head = next
                if let broken {
                    self.stop(at: broken)
                    // Nothing more can be applied; wait for the operator (health says why).
                    try await gracefulShutdown()
                    return
                }
                if !caughtUp && head.position >= target {
                    caughtUp = true
                    self.quorum.caughtUp()
                }
            }
        }
    }

    /// Once a second, while a majority of the replicas report having applied further than this
    /// one: asks where the log ends, and stops (`truncated`) if it ends before what they reached.
    /// A replica that was down while the log lost entries the others had applied finds nothing
    /// wrong in the log alone: it would serve, and say "no outcome" for transactions they signed
    /// (found from outside).
    private func watchLogEnd() async {
        guard !quorum.isAlone else { return }
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(1)) } catch { return }
            let reached = quorum.majorityReached
            guard reached > appliedPosition, quorum.health.refusal == nil else { continue }
            // An end before `reached` is asked again for a while before it is believed (JetStream).
            guard let end = try? await log.lastPosition(applied: reached) else { continue }
            if let evidence = quorum.logLost(end: end) {
                stop(at: evidence)
                return
            }
        }
    }

    /// Applies the entries that continue `head` and returns the new head, with the break if an
    /// entry does not continue it (the entries before it are applied). The decisions are the
    /// step's (`ReplicaStep`); this shell logs, commits and hands the answers on.
    func apply(_ entries: [LogEntry], after head: ChainHead) async throws -> (ChainHead, LogBreak?) {
        let step = ReplicaStep(entries, after: head, codec: codec)
        for note in step.notes {
            switch note {
            case .stale(let position, let claimed, let sequencer):
                logger.info("skipped a log entry that lost the race for its position", metadata: [
                    "position": "\(position)", "claimed": "\(claimed)", "sequencer": "\(sequencer)",
                ])
            case .dropped(let position, let count):
                logger.error("undecodable requests in log entry", metadata: ["position": "\(position)", "dropped": "\(count)"])
            }
        }
        guard !step.consumed.isEmpty else { return (head, step.broken) }
        let result = try await store.apply(refs: step.refs, txIds: step.txIds) { [step] view in step.decide(view) }
        metrics.recordApplied(entries: step.consumed.count, decision: result.decision)
        metrics.appliedPosition.record(Int64(result.head.position))
        gate.hold(position: result.head.position, txIds: step.requested, outcomes: result.decision.outcomes)
        quorum.applied(result.heads)
        return (result.head, step.broken)
    }

    private func stop(at broken: LogBreak) {
        logger.critical("the log is broken; this replica stops applying and signing", metadata: [
            "evidence": "\(broken)", "kind": "\(broken.kind.rawValue)", "position": "\(broken.position)",
        ])
        quorum.broke(broken)
    }
}
