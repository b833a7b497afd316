import HawserCore
import Notary
import Uniqueness

/// One replica's store in memory, as `NotaryStore` promises it: each pass is one transaction
/// (decided over what it holds of the pass's states and transactions), and it keeps everything
/// it committed across a crash. It also keeps the head after every position, for the checks.
struct SimNotaryStore {
    var spentBy: [StateRef: SecureHash] = [:]
    var outcomes: [SecureHash: NotarisationOutcome] = [:]
    var head = ChainHead.genesis
    /// `heads[p - 1]`: the head after position `p`.
    var heads: [ChainHead] = []

    mutating func apply(_ step: ReplicaStep) -> AppliedBatch {
        var view = UniquenessView()
        for ref in step.refs { if let by = spentBy[ref] { view.spentBy[ref] = by } }
        for txId in step.txIds { if let outcome = outcomes[txId] { view.outcomes[txId] = outcome } }
        let result = step.decide(view)
        for (ref, txId) in result.decision.newlySpent { spentBy[ref] = txId }
        for (txId, outcome) in result.decision.newOutcomes { outcomes[txId] = outcome }
        heads += result.heads
        head = result.head
        return result
    }
}

/// The log in memory: the entries as its leader holds them, and for each replica the server it
/// reads from, which may serve a shorter log for a while (a lost tail) or other entries at some
/// positions (a diverged follower). Appends are conditional on the expected last position unless
/// `unconditionalUntil` (the `race` fault); a retried append with the same id is answered with
/// its first copy's position, as JetStream's message ids do.
struct SimNotaryLog {
    struct Follower {
        /// Serves nothing after this position until `shortUntil` (true time).
        var shortEnd: UInt64 = 0
        var shortUntil: Int64 = 0
        /// Positions where this server holds another entry than the leader.
        var other: [UInt64: [UInt8]] = [:]
        /// The next position appended is held differently here (set by the `diverge` fault).
        var divergeNext = false
    }

    var entries: [[UInt8]] = []
    var followers: [Follower]
    var unconditionalUntil: Int64 = 0
    private var appended: [UInt64: UInt64] = [:]  // append id -> position

    init(replicas: Int) { followers = Array(repeating: Follower(), count: replicas) }

    var end: UInt64 { UInt64(entries.count) }

    enum Appended { case at(UInt64), conflict }

    /// Appends `payload` (id `id`) if the log ends at `after` (or unconditionally).
    mutating func append(_ payload: [UInt8], after: UInt64, id: UInt64, now: Int64, unconditional: Bool) -> Appended {
        if let position = appended[id] { return .at(position) }
        guard unconditional || now < unconditionalUntil || after == end else { return .conflict }
        entries.append(payload)
        appended[id] = end
        return .at(end)
    }

    /// Every server lost the last `count` entries; appends of them are forgotten too.
    mutating func truncate(_ count: UInt64) {
        entries.removeLast(Int(count))
        appended = appended.filter { $0.value <= end }
    }

    /// The end as replica `index`'s server sees it now.
    func end(for index: Int, now: Int64) -> UInt64 {
        let follower = followers[index]
        return now < follower.shortUntil ? min(end, follower.shortEnd) : end
    }

    /// Up to `limit` entries after `position`, as replica `index`'s server holds them.
    func read(for index: Int, after position: UInt64, limit: Int, now: Int64) -> [LogEntry] {
        let last = end(for: index, now: now)
        guard position < last else { return [] }
        return (position + 1...min(last, position + UInt64(limit))).map { p in
            LogEntry(position: p, payload: followers[index].other[p] ?? entries[Int(p - 1)])
        }
    }
}

/// A client's transaction: its request and the inputs it spends.
struct SimTransaction {
    var request: NotarisationRequest
    var attempts = 0
}
