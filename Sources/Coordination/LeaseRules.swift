/// The lease row as a round's transaction reads it (locked until the transaction ends).
/// Times are milliseconds since 1970 by the database's clock.
public struct LeaseRow: Sendable, Hashable {
    public var holder: String?
    public var epoch: Epoch
    public var expiresMs: Int64
    public var preferred: String?
    /// A pending switchover's target: a free lease is reserved for it while it runs rounds.
    public var target: String?
    public init(holder: String?, epoch: Epoch, expiresMs: Int64, preferred: String? = nil, target: String? = nil) {
        self.holder = holder
        self.epoch = epoch
        self.expiresMs = expiresMs
        self.preferred = preferred
        self.target = target
    }
}

/// One candidate's row: who stands, whether healthy, when last seen (database clock), and which
/// process (`instance`, random per start) wrote it.
public struct CandidateRow: Sendable, Hashable {
    public var candidate: Candidate
    public var healthy: Bool
    public var seenMs: Int64
    public var instance: String?
    public init(candidate: Candidate, healthy: Bool, seenMs: Int64, instance: String?) {
        self.candidate = candidate
        self.healthy = healthy
        self.seenMs = seenMs
        self.instance = instance
    }
}

/// What a lease transaction read: the database's time, the election's lease row and its candidates.
public struct LeaseState: Sendable, Hashable {
    public var nowMs: Int64
    public var lease: LeaseRow
    public var candidates: [CandidateRow]
    public init(nowMs: Int64, lease: LeaseRow, candidates: [CandidateRow]) {
        self.nowMs = nowMs
        self.lease = lease
        self.candidates = candidates
    }
}

/// The rules every lease backend applies inside its transaction, as pure functions of what it
/// read: PostgreSQL and SQLite only read and write rows (their SQL dialects differ), the rules
/// are these. Each returns the rows to write (nil: leave it as it is).
public enum LeaseRules {
    public struct RoundOutcome: Sendable, Hashable {
        /// Upsert this candidate row (nil for a duplicate: the other process owns the row).
        public var candidate: CandidateRow?
        public var lease: LeaseRow?
        public var view: ElectionView
    }

    /// One candidate's round: record that it stands, then renew, take or leave the lease.
    public static func round(_ state: LeaseState, candidate: Candidate, instance: String, request: RoundRequest,
                             configuration: LeaseConfiguration) -> RoundOutcome {
        let now = state.nowMs
        let leaseMs = configuration.leaseDuration.millisecondsValue
        // Another process wrote our row within a lease: it is alive, and it came first.
        let duplicate = state.candidates.contains { row in
            row.candidate.id == candidate.id && row.instance != nil && row.instance != instance && row.seenMs > now - leaseMs
        }
        var candidates = state.candidates.filter { $0.candidate.id != candidate.id || duplicate }
        let mine = duplicate ? nil : CandidateRow(candidate: candidate, healthy: request.healthy, seenMs: now, instance: instance)
        if let mine { candidates.append(mine) }
        let standingRows = standingRows(candidates, now: now, within: configuration.leaseDuration)
        let standing = Set(standingRows.map(\.candidate.id))
        let incarnations = Dictionary(standingRows.map { ($0.candidate.id, $0.instance ?? "") }, uniquingKeysWith: { first, _ in first })

        var row = state.lease
        var write: LeaseRow?
        let unexpired = row.holder != nil && row.expiresMs > now
        if duplicate {
            // Never renew or take: the lease may be the other process's.
        } else if unexpired {
            if row.holder == candidate.id, request.mayAcquire, !request.standingAside || row.target == candidate.id {
                // Renewed under the epoch it leads with; taken again under a new one if it stepped
                // down meanwhile (see `RoundRequest.leadingWith`).
                if request.leadingWith != row.epoch { row.epoch = max(row.epoch, request.highestSeen).next }
                row.expiresMs = now + leaseMs
                write = row
            }
        } else {
            // Reserved for the target while it keeps running rounds: a live target, however slow,
            // gets it; one that died stops holding it up a hand-over window after its last round.
            let window = configuration.handOverWindow.millisecondsValue
            let reserved = row.target.map { target in candidates.contains { $0.candidate.id == target && $0.healthy && $0.seenMs > now - window } } ?? false
            if TakeoverRule.mayTake(me: candidate.id, request: request, target: row.target, targetReserved: reserved) {
                row = LeaseRow(holder: candidate.id, epoch: max(row.epoch, request.highestSeen).next, expiresMs: now + leaseMs,
                               preferred: row.preferred, target: nil)
                write = row
            }
        }
        // Our own id only if this round renewed or took the lease: a lease we still hold but did
        // not renew (standing aside, unhealthy) confirms nothing, and lapses or is released.
        let live = row.holder != nil && row.expiresMs > now ? row.holder : nil
        let holder = live == candidate.id && write == nil ? nil : live
        let view = ElectionView(holder: holder, epoch: row.epoch, preferred: row.preferred, target: row.target,
                                standing: standing, incarnations: incarnations, duplicate: duplicate)
        return RoundOutcome(candidate: mine, lease: write, view: view)
    }

    /// Gives the lease up if `holder` still holds it with `epoch`; with a target, the lease is
    /// reserved for it (see `round`).
    public static func release(_ state: LeaseState, holder: String, epoch: Epoch, handOverTo: String?) -> LeaseRow? {
        var row = state.lease
        guard row.holder == holder, row.epoch == epoch else { return nil }
        row.holder = nil
        row.expiresMs = min(row.expiresMs, state.nowMs)
        if let handOverTo { row.target = handOverTo }
        return row
    }

    /// The leader drops the switchover target (reached, or not standing).
    public static func clearTarget(_ state: LeaseState, holder: String) -> LeaseRow? {
        var row = state.lease
        guard row.holder == holder, row.target != nil else { return nil }
        row.target = nil
        return row
    }

    /// An operator's switchover: the target must have run a round within the hand-over window
    /// (a candidate killed longer ago is refused). nil when it already leads.
    public static func setTarget(_ state: LeaseState, _ id: String, configuration: LeaseConfiguration) throws(CoordinationError) -> LeaseRow? {
        var row = state.lease
        if row.holder == id, row.expiresMs > state.nowMs { return nil }
        let recent = standingRows(state.candidates, now: state.nowMs, within: configuration.handOverWindow)
        guard recent.contains(where: { $0.candidate.id == id }) else { throw .unknownCandidate(id) }
        row.target = id
        return row
    }

    /// An operator's preferred master: a standing candidate, or nil to clear.
    public static func setPreferred(_ state: LeaseState, _ id: String?, configuration: LeaseConfiguration) throws(CoordinationError) -> LeaseRow {
        var row = state.lease
        if let id, !standingRows(state.candidates, now: state.nowMs, within: configuration.leaseDuration).contains(where: { $0.candidate.id == id }) {
            throw .unknownCandidate(id)
        }
        row.preferred = id
        return row
    }

    /// The operator's view.
    public static func snapshot(_ state: LeaseState, configuration: LeaseConfiguration) -> ElectionSnapshot {
        let row = state.lease
        let unhealthy = state.candidates.filter { !$0.healthy && $0.seenMs > state.nowMs - configuration.leaseDuration.millisecondsValue }
        return ElectionSnapshot(leader: row.expiresMs > state.nowMs ? row.holder : nil, epoch: row.epoch,
                                candidates: standingRows(state.candidates, now: state.nowMs, within: configuration.leaseDuration).map(\.candidate),
                                unhealthy: unhealthy.sorted { $0.candidate.id < $1.candidate.id }.map(\.candidate),
                                preferred: row.preferred, switchoverTarget: row.target)
    }

    /// Healthy candidates seen within `within`, by id.
    static func standingRows(_ rows: [CandidateRow], now: Int64, within: Duration) -> [CandidateRow] {
        rows.filter { $0.healthy && $0.seenMs > now - within.millisecondsValue }.sorted { $0.candidate.id < $1.candidate.id }
    }
}
