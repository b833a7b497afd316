import HawserCore

/// What the uniqueness check needs of a request: the signature was checked by the front.
public struct UniquenessRequest: Hashable, Sendable {
    public var txId: SecureHash
    public var inputs: [StateRef]
    public var references: [StateRef]
    public var timeWindow: TimeWindow?

    public init(txId: SecureHash, inputs: [StateRef], references: [StateRef] = [], timeWindow: TimeWindow? = nil) {
        self.txId = txId
        self.inputs = inputs
        self.references = references
        self.timeWindow = timeWindow
    }

    public init(_ request: NotarisationRequest) {
        self.init(txId: request.txId, inputs: request.inputs, references: request.references, timeWindow: request.timeWindow)
    }
}

/// The persisted facts a batch touches: which of its refs are spent and by whom, and which of its
/// transactions already have an outcome. Absent keys mean "unspent" and "never decided".
public struct UniquenessView: Sendable {
    public var spentBy: [StateRef: SecureHash]
    public var outcomes: [SecureHash: NotarisationOutcome]

    public init(spentBy: [StateRef: SecureHash] = [:], outcomes: [SecureHash: NotarisationOutcome] = [:]) {
        self.spentBy = spentBy
        self.outcomes = outcomes
    }
}

/// The decisions for one batch, and the new facts to persist with them in one transaction.
public struct BatchDecision: Sendable, Equatable {
    /// One outcome per request, in log order (a repeated transaction gets its first outcome).
    public var outcomes: [NotarisationOutcome]
    /// Outcomes decided by this batch, in log order: each transaction at most once.
    public var newOutcomes: [(txId: SecureHash, outcome: NotarisationOutcome)]
    /// States spent by this batch, in log order.
    public var newlySpent: [(ref: StateRef, txId: SecureHash)]

    public init(outcomes: [NotarisationOutcome], newOutcomes: [(txId: SecureHash, outcome: NotarisationOutcome)],
                newlySpent: [(ref: StateRef, txId: SecureHash)]) {
        self.outcomes = outcomes
        self.newOutcomes = newOutcomes
        self.newlySpent = newlySpent
    }

    public static func == (a: BatchDecision, b: BatchDecision) -> Bool {
        a.outcomes == b.outcomes
            && a.newOutcomes.elementsEqual(b.newOutcomes) { $0.txId == $1.txId && $0.outcome == $1.outcome }
            && a.newlySpent.elementsEqual(b.newlySpent) { $0.ref == $1.ref && $0.txId == $1.txId }
    }
}

/// The notary's uniqueness rules as a pure function of a batch of log entries and the facts they
/// touch. It reads no clock and iterates no dictionary, so every replica decides byte for byte alike.
public enum UniquenessChecker {
    /// Decides `requests` in order; `notaryTime` of each is the timestamp of the log entry that
    /// carried it. Conflicts inside the batch are seen because each decision updates the view.
    public static func decide(_ requests: [(request: UniquenessRequest, notaryTime: Instant)],
                              known: UniquenessView) -> BatchDecision {
        var view = known
        var decision = BatchDecision(outcomes: [], newOutcomes: [], newlySpent: [])
        decision.outcomes.reserveCapacity(requests.count)
        for (request, notaryTime) in requests {
            if let prior = view.outcomes[request.txId] {
                decision.outcomes.append(prior)
                continue
            }
            let outcome = judge(request, at: notaryTime, spentBy: view.spentBy)
            if outcome == .committed {
                for input in request.inputs where view.spentBy[input] == nil {
                    view.spentBy[input] = request.txId
                    decision.newlySpent.append((input, request.txId))
                }
            }
            view.outcomes[request.txId] = outcome
            decision.outcomes.append(outcome)
            decision.newOutcomes.append((request.txId, outcome))
        }
        return decision
    }

    /// Conflicts first (inputs, then references, each in request order), then the time window.
    static func judge(_ request: UniquenessRequest, at notaryTime: Instant,
                      spentBy: [StateRef: SecureHash]) -> NotarisationOutcome {
        var conflicts = [Conflict]()
        for (refs, kind) in [(request.inputs, RefKind.input), (request.references, RefKind.reference)] {
            for ref in refs {
                if let consumer = spentBy[ref], consumer != request.txId {
                    conflicts.append(Conflict(ref: ref, kind: kind, consumingTxIdHash: SecureHash.sha256(consumer.bytes)))
                }
            }
        }
        if !conflicts.isEmpty { return .conflict(conflicts) }
        if let window = request.timeWindow, !window.contains(notaryTime) {
            return .timeWindowInvalid(notaryTime: notaryTime, window: window)
        }
        return .committed
    }
}
