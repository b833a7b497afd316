import HawserCore
import HawserWire
import Logging
import ServiceLifecycle
import Synchronization
import Uniqueness

/// Consumes the log in order and applies it to this replica's store: each pass takes every
/// pending entry (up to a limit), decides them with `UniquenessChecker`, signs the batch's Merkle
/// root once, and commits effects and position in one transaction. Restarting resumes from the
/// stored position, so a lost store is rebuilt by replaying the log from the start.
public final class Replica: Service, Sendable {
    private let log: any ReplicatedLog
    private let store: any NotaryStore
    private let signer: SigningKey
    private let waiters: AnswerWaiters
    private let maxEntriesPerApply: Int
    private let metrics: NotaryMetrics
    private let logger: Logger
    private let applied = PositionSignal(0)
    private let thread: DedicatedThread?
    /// The log's end when the replica started; it is ready once it has applied that far.
    private let catchUpTarget = Mutex<UInt64?>(nil)

    /// `thread`: the thread to run on, shared with other loops (each calls its `stop`); by
    /// default the replica makes one of its own.
    public init(log: any ReplicatedLog, store: any NotaryStore, signer: SigningKey, waiters: AnswerWaiters,
                maxEntriesPerApply: Int, metrics: NotaryMetrics, logger: Logger, thread: DedicatedThread? = nil) {
        self.thread = thread
        self.log = log
        self.store = store
        self.signer = signer
        self.waiters = waiters
        self.maxEntriesPerApply = maxEntriesPerApply
        self.metrics = metrics
        self.logger = logger
    }

    /// The last log position applied to the store.
    public var appliedPosition: UInt64 { applied.value }

    /// Returns once the replica has applied `position`.
    public func waitUntilApplied(_ position: UInt64) async throws {
        if position > 0 { try await applied.wait(beyond: position - 1) }
    }

    /// True once the replica has applied everything the log held when it started.
    public var isCaughtUp: Bool {
        catchUpTarget.withLock { $0 }.map { applied.value >= $0 } ?? false
    }

    public func run() async throws {
        let start = try await store.appliedPosition()
        let target = try await log.lastPosition()
        applied.advance(to: start)
        catchUpTarget.withLock { $0 = target }
        logger.info("replica starting", metadata: ["applied": "\(start)", "logEnd": "\(target)"])
        let thread = self.thread ?? DedicatedThread(name: "hawser-replica")
        defer { thread.stop() }
        do {
            try await withTaskExecutorPreference(thread) {
                try await self.applyLoop(from: start)
            }
        } catch is CancellationError {
            // Shutdown: an interrupted batch was rolled back and is applied again on restart.
        }
        logger.info("replica stopped", metadata: ["applied": "\(appliedPosition)"])
    }

    private func applyLoop(from start: UInt64) async throws {
        try await cancelWhenGracefulShutdown {
            var position = start
            while !Task.isCancelled {
                let entries = try await self.log.read(after: position, limit: self.maxEntriesPerApply)
                guard let last = entries.last else { continue }
                try await self.apply(entries)
                position = last.position
                self.applied.advance(to: position)
                self.metrics.appliedPosition.record(Int64(position))
            }
        }
    }

    func apply(_ entries: [LogEntry]) async throws {
        var items = [(request: UniquenessRequest, notaryTime: Instant)]()
        for entry in entries {
            let decoded = LogBatchCodec.decode(entry.payload)
            if decoded.dropped > 0 {
                logger.error("undecodable requests in log entry", metadata: ["position": "\(entry.position)", "dropped": "\(decoded.dropped)"])
            }
            for request in decoded.requests { items.append((UniquenessRequest(request), decoded.time)) }
        }
        var refs = Set<StateRef>(), txIds = Set<SecureHash>()
        for (request, _) in items {
            txIds.insert(request.txId)
            refs.formUnion(request.inputs)
            refs.formUnion(request.references)
        }
        // Sorted: neighbouring keys share B-tree pages, so a batch's lookups touch fewer pages.
        let decision = try await store.apply(through: entries.last!.position, refs: refs.sorted(), txIds: txIds.sorted()) { [items] view in
            UniquenessChecker.decide(items, known: view)
        }
        metrics.recordApplied(entries: entries.count, decision: decision)
        answerWaiters(items.map(\.request.txId), decision.outcomes)
    }

    /// Signs the batch once and hands each waiting request its outcome with a proof.
    private func answerWaiters(_ txIds: [SecureHash], _ outcomes: [NotarisationOutcome]) {
        guard txIds.contains(where: waiters.isWaiting) else { return }
        let leaves = zip(txIds, outcomes).map { NotarisationAnswer.leafHash(txId: $0, outcome: $1) }
        let tree = MerkleTree(leaves: leaves)
        let signature = signer.sign(NotarisationAnswer.batchSigningPayload(root: tree.root))
        for (index, txId) in txIds.enumerated() where waiters.isWaiting(for: txId) {
            waiters.fulfil(NotarisationAnswer(txId: txId, outcome: outcomes[index], proof: tree.proof(forLeaf: index),
                                              signature: signature))
        }
    }
}
