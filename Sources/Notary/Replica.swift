import HawserCore
import HawserWire
import Logging
import ServiceLifecycle
import Synchronization
import Uniqueness

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

    /// The last log position applied to the store.
    public var appliedPosition: UInt64 { quorum.appliedSignal.value }

    /// Returns once the replica has applied `position`.
    public func waitUntilApplied(_ position: UInt64) async throws {
        if position > 0 { try await quorum.appliedSignal.wait(beyond: position - 1) }
    }

    /// True once the replica has applied everything the log held when it started.
    public var isCaughtUp: Bool {
        catchUpTarget.withLock { $0 }.map { appliedPosition >= $0 } ?? false
    }

    public func run() async throws {
        let start = try await store.head()
        let target = try await log.lastPosition()
        quorum.start(at: start)
        catchUpTarget.withLock { $0 = target }
        if start.position >= target { quorum.caughtUp() }
        logger.info("replica starting", metadata: ["applied": "\(start.position)", "logEnd": "\(target)"])
        let thread = self.thread ?? DedicatedThread(name: "hawser-replica")
        defer { thread.stop() }
        do {
            try await withTaskExecutorPreference(thread) {
                try await self.applyLoop(from: start, caughtUpAt: target)
            }
        } catch is CancellationError {
            // Shutdown: an interrupted batch was rolled back and is applied again on restart.
        }
        logger.info("replica stopped", metadata: ["applied": "\(appliedPosition)"])
    }

    private func applyLoop(from start: ChainHead, caughtUpAt target: UInt64) async throws {
        try await cancelWhenGracefulShutdown {
            var head = start, caughtUp = start.position >= target
            while !Task.isCancelled {
                let entries = try await self.log.read(after: head.position, limit: self.maxEntriesPerApply)
                guard !entries.isEmpty else { continue }
                let (next, broken) = try await self.apply(entries, after: head)
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

    /// Applies the entries that continue `head` and returns the new head, with the break if an
    /// entry does not continue it (the entries before it are applied).
    func apply(_ entries: [LogEntry], after head: ChainHead) async throws -> (ChainHead, LogBreak?) {
        /// A consumed position: an entry to apply, or a stale one to skip.
        var consumed = [(position: UInt64, entryHash: SecureHash, batch: ReplicaCodec.Batch?)]()
        var broken: LogBreak?
        var tail = head
        for entry in entries {
            let entryHash = SecureHash.sha256(entry.payload)
            let batch = codec.batch(fromEntry: entry.payload)
            switch LogChain.check(entry, batch, entryHash: entryHash, after: tail) {
            case .broken(let found):
                broken = found
            case .stale:
                logger.info("skipped a log entry that lost the race for its position", metadata: [
                    "position": "\(entry.position)", "claimed": "\(batch!.position)", "sequencer": "\(batch!.sequencer)",
                ])
                tail.position = entry.position
                consumed.append((entry.position, entryHash, nil))
            case .next:
                tail = ChainHead(position: entry.position, entryHash: entryHash, stateHash: tail.stateHash)
                consumed.append((entry.position, entryHash, batch!))
                if batch!.dropped > 0 {
                    logger.error("undecodable requests in log entry", metadata: ["position": "\(entry.position)", "dropped": "\(batch!.dropped)"])
                }
            }
            if broken != nil { break }
        }
        guard !consumed.isEmpty else { return (head, broken) }

        var items = [(request: UniquenessRequest, notaryTime: Instant)]()
        var refs = Set<StateRef>(), txIds = Set<SecureHash>()
        for case let (_, _, batch?) in consumed {
            for request in batch.requests {
                let item = UniquenessRequest(request)
                items.append((item, batch.time))
                txIds.insert(item.txId)
                refs.formUnion(item.inputs)
                refs.formUnion(item.references)
            }
        }
        // Sorted: neighbouring keys share B-tree pages, so a batch's lookups touch fewer pages.
        let result = try await store.apply(refs: refs.sorted(), txIds: txIds.sorted()) { [items, consumed] view in
            let decision = UniquenessChecker.decide(items, known: view)
            var heads = [ChainHead](), current = head, offset = 0
            heads.reserveCapacity(consumed.count)
            for (position, entryHash, batch) in consumed {
                current.position = position
                if let batch {
                    let count = batch.requests.count
                    current.entryHash = entryHash
                    current.stateHash = LogChain.nextState(current.stateHash, entryHash: entryHash,
                                                           outcomes: decision.outcomes[offset..<offset + count])
                    offset += count
                }
                heads.append(current)
            }
            return AppliedBatch(decision: decision, heads: heads)
        }
        metrics.recordApplied(entries: consumed.count, decision: result.decision)
        metrics.appliedPosition.record(Int64(result.head.position))
        gate.hold(position: result.head.position, txIds: items.map(\.request.txId), outcomes: result.decision.outcomes)
        quorum.applied(result.heads)
        return (result.head, broken)
    }

    private func stop(at broken: LogBreak) {
        logger.critical("the log is broken; this replica stops applying and signing", metadata: [
            "evidence": "\(broken)", "kind": "\(broken.kind.rawValue)", "position": "\(broken.position)",
        ])
        quorum.broke(broken)
    }
}
