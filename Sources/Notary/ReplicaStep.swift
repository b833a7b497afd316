import HawserCore
import Uniqueness

/// The replica's decisions for one pass over the log, without I/O: which of the entries read
/// continue the chain it has verified (`LogChain`), which are stale and skipped, where the chain
/// breaks, what the store's transaction reads, how it decides (`UniquenessChecker`) and which
/// chain heads it commits. `Replica` and the simulator (`NotaryClusterSim`) drive the same step:
/// entries in, one transaction's plan and the answers to hold out.
public struct ReplicaStep: Sendable {
    /// A consumed position: an entry to apply (`batch`), or a stale one skipped (`batch` nil).
    public struct Consumed: Sendable {
        public var position: UInt64
        public var entryHash: SecureHash
        public var batch: ReplicaCodec.Batch?
    }

    /// What the shell reports as it applies (logs), in log order.
    public enum Note: Sendable, Equatable {
        /// An entry that lost the race for its position, skipped.
        case stale(position: UInt64, claimed: UInt64, sequencer: String)
        /// Requests in an entry that did not decode (dropped alike on every replica).
        case dropped(position: UInt64, count: Int)
    }

    /// The head the pass starts from.
    public let head: ChainHead
    public private(set) var consumed: [Consumed] = []
    /// The entry that does not continue the chain, if one does not; the entries before it are applied.
    public private(set) var broken: LogBreak?
    public private(set) var notes: [Note] = []
    /// The requests to decide, in log order, each with its entry's time.
    public private(set) var items: [(request: UniquenessRequest, notaryTime: Instant)] = []
    /// The states and transactions the transaction reads, sorted: neighbouring keys share B-tree
    /// pages, so a batch's lookups touch fewer pages.
    public private(set) var refs: [StateRef] = []
    public private(set) var txIds: [SecureHash] = []

    /// Checks `entries` (in log order) against the chain from `head`, up to the first break.
    /// `check` is the chain rule (`LogChain.check`); only the simulator's mutations replace it.
    public init(_ entries: [LogEntry], after head: ChainHead, codec: ReplicaCodec,
                check: (LogEntry, ReplicaCodec.Batch?, SecureHash, ChainHead) -> LogChain.Verdict = LogChain.check) {
        self.head = head
        var tail = head
        for entry in entries {
            let entryHash = SecureHash.sha256(entry.payload)
            let batch = codec.batch(fromEntry: entry.payload)
            switch check(entry, batch, entryHash, tail) {
            case .broken(let found):
                broken = found
            case .stale:
                notes.append(.stale(position: entry.position, claimed: batch!.position, sequencer: batch!.sequencer))
                tail.position = entry.position
                consumed.append(Consumed(position: entry.position, entryHash: entryHash, batch: nil))
            case .next:
                tail = ChainHead(position: entry.position, entryHash: entryHash, stateHash: tail.stateHash)
                consumed.append(Consumed(position: entry.position, entryHash: entryHash, batch: batch!))
                if batch!.dropped > 0 { notes.append(.dropped(position: entry.position, count: batch!.dropped)) }
            }
            if broken != nil { break }
        }
        var refs = Set<StateRef>(), txIds = Set<SecureHash>()
        for step in consumed {
            guard let batch = step.batch else { continue }
            for request in batch.requests {
                let item = UniquenessRequest(request)
                items.append((item, batch.time))
                txIds.insert(item.txId)
                refs.formUnion(item.inputs)
                refs.formUnion(item.references)
            }
        }
        self.refs = refs.sorted()
        self.txIds = txIds.sorted()
    }

    /// The transaction ids of `items`, in order: the answers to hold until the quorum confirms.
    public var requested: [SecureHash] { items.map(\.request.txId) }

    /// The transaction's decision over what the store holds of `refs` and `txIds`: the outcomes,
    /// and the chain head after each consumed position.
    public func decide(_ view: UniquenessView) -> AppliedBatch {
        let decision = UniquenessChecker.decide(items, known: view)
        var heads = [ChainHead](), current = head, offset = 0
        heads.reserveCapacity(consumed.count)
        for step in consumed {
            current.position = step.position
            if let batch = step.batch {
                let count = batch.requests.count
                current.entryHash = step.entryHash
                current.stateHash = LogChain.nextState(current.stateHash, entryHash: step.entryHash,
                                                       outcomes: decision.outcomes[offset..<offset + count])
                offset += count
            }
            heads.append(current)
        }
        return AppliedBatch(decision: decision, heads: heads)
    }
}
