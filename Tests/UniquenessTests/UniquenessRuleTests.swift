import Testing
import HawserCore
import Uniqueness

func tx(_ n: UInt8) -> SecureHash { SecureHash(bytes: [UInt8](repeating: n, count: 32))! }
func ref(_ n: UInt8, _ index: UInt32 = 0) -> StateRef { StateRef(txId: SecureHash(bytes: [0xee] + [UInt8](repeating: n, count: 31))!, index: index) }
func at(_ micros: Int64) -> Instant { Instant(microsecondsSinceEpoch: micros) }
func hashOf(_ id: SecureHash) -> SecureHash { SecureHash.sha256(id.bytes) }

/// The view a later batch sees once `decision` is persisted on top of `view`.
func persisted(_ decision: BatchDecision, on view: UniquenessView) -> UniquenessView {
    var v = view
    for (ref, txId) in decision.newlySpent {
        #expect(v.spentBy[ref] == nil, "\(ref) spent twice")
        v.spentBy[ref] = txId
    }
    for (txId, outcome) in decision.newOutcomes {
        #expect(v.outcomes[txId] == nil, "\(txId) decided twice")
        v.outcomes[txId] = outcome
    }
    return v
}

/// A tiny harness: decides one request at a time and persists, like a replica applying entries.
struct Ledger {
    var view = UniquenessView()

    @discardableResult
    mutating func notarise(_ id: SecureHash, inputs: [StateRef], references: [StateRef] = [],
                           window: TimeWindow? = nil, at time: Instant = at(0)) -> (NotarisationOutcome, BatchDecision) {
        let request = UniquenessRequest(txId: id, inputs: inputs, references: references, timeWindow: window)
        let decision = UniquenessChecker.decide([(request, time)], known: view)
        view = persisted(decision, on: view)
        return (decision.outcomes[0], decision)
    }
}

@Suite(.timeLimit(.minutes(10))) struct UniquenessRuleTests {
    @Test func committedTransactionSpendsItsInputs() {
        var ledger = Ledger()
        let (outcome, decision) = ledger.notarise(tx(1), inputs: [ref(1), ref(2, 5)])
        #expect(outcome == .committed)
        #expect(decision.outcomes == [.committed])
        #expect(decision.newOutcomes.map(\.txId) == [tx(1)])
        #expect(decision.newOutcomes.map(\.outcome) == [.committed])
        #expect(decision.newlySpent.map(\.ref) == [ref(1), ref(2, 5)])
        #expect(decision.newlySpent.map(\.txId) == [tx(1), tx(1)])
        #expect(ledger.view.spentBy == [ref(1): tx(1), ref(2, 5): tx(1)])
    }

    @Test func transactionWithoutInputsCommitsAndSpendsNothing() {
        var ledger = Ledger()
        let (outcome, decision) = ledger.notarise(tx(1), inputs: [], references: [ref(1)])
        #expect(outcome == .committed)
        #expect(decision.newlySpent.isEmpty)
    }

    @Test func duplicateInputInOneRequestIsSpentOnce() {
        var ledger = Ledger()
        let (outcome, decision) = ledger.notarise(tx(1), inputs: [ref(1), ref(1)])
        #expect(outcome == .committed)
        #expect(decision.newlySpent.map(\.ref) == [ref(1)])
    }

    @Test func sameTransactionAgainIsIdempotent() {
        var ledger = Ledger()
        ledger.notarise(tx(1), inputs: [ref(1), ref(2)])
        let before = ledger.view.spentBy
        // Asked again, later, even outside a time window it would now fail: the same answer.
        let (again, decision) = ledger.notarise(tx(1), inputs: [ref(1), ref(2)],
                                                window: TimeWindow(from: nil, until: at(10)), at: at(99))
        #expect(again == .committed)
        #expect(decision.outcomes == [.committed])
        #expect(decision.newOutcomes.isEmpty)
        #expect(decision.newlySpent.isEmpty)
        #expect(ledger.view.spentBy == before)
    }

    @Test func sameTransactionTwiceInOneBatch() {
        let request = UniquenessRequest(txId: tx(1), inputs: [ref(1)])
        let decision = UniquenessChecker.decide([(request, at(0)), (request, at(1))], known: UniquenessView())
        #expect(decision.outcomes == [.committed, .committed])
        #expect(decision.newOutcomes.count == 1)
        #expect(decision.newlySpent.count == 1)
    }

    @Test func spentByAnotherTransactionIsAConflict() {
        var ledger = Ledger()
        ledger.notarise(tx(1), inputs: [ref(1), ref(2)])
        ledger.notarise(tx(2), inputs: [ref(3)])
        let (outcome, decision) = ledger.notarise(tx(3), inputs: [ref(4), ref(2), ref(3)], references: [ref(1), ref(5)])
        #expect(outcome == .conflict([
            Conflict(ref: ref(2), kind: .input, consumingTxIdHash: hashOf(tx(1))),
            Conflict(ref: ref(3), kind: .input, consumingTxIdHash: hashOf(tx(2))),
            Conflict(ref: ref(1), kind: .reference, consumingTxIdHash: hashOf(tx(1))),
        ]))
        // The consumer is named by the hash of its id, never by the id itself.
        if case .conflict(let conflicts) = outcome {
            for c in conflicts { #expect(c.consumingTxIdHash != tx(1) && c.consumingTxIdHash != tx(2)) }
        }
        #expect(decision.newOutcomes.map(\.txId) == [tx(3)])
        #expect(decision.newlySpent.isEmpty)
        // ref(4), which was free, stays free.
        #expect(ledger.view.spentBy[ref(4)] == nil)
    }

    @Test func conflictsFollowRequestOrderInputsFirst() {
        var ledger = Ledger()
        ledger.notarise(tx(1), inputs: [ref(1), ref(2), ref(3)])
        let (outcome, _) = ledger.notarise(tx(2), inputs: [ref(3), ref(1)], references: [ref(2)])
        guard case .conflict(let cs) = outcome else { Issue.record("expected a conflict, got \(outcome)"); return }
        #expect(cs.map(\.ref) == [ref(3), ref(1), ref(2)])
        #expect(cs.map(\.kind) == [.input, .input, .reference])
    }

    @Test func referencesAreCheckedButNeverSpent() {
        var ledger = Ledger()
        let (first, decision) = ledger.notarise(tx(1), inputs: [ref(1)], references: [ref(2)])
        #expect(first == .committed)
        #expect(decision.newlySpent.map(\.ref) == [ref(1)])
        // Any number of transactions may refer to the same state...
        #expect(ledger.notarise(tx(2), inputs: [], references: [ref(2)]).0 == .committed)
        #expect(ledger.notarise(tx(3), inputs: [ref(3)], references: [ref(2)]).0 == .committed)
        // ...and it can still be spent afterwards, once.
        #expect(ledger.notarise(tx(4), inputs: [ref(2)]).0 == .committed)
        #expect(ledger.view.spentBy[ref(2)] == tx(4))
        // From then on referring to it is a conflict.
        #expect(ledger.notarise(tx(5), inputs: [], references: [ref(2)]).0
                == .conflict([Conflict(ref: ref(2), kind: .reference, consumingTxIdHash: hashOf(tx(4)))]))
    }

    @Test func aTransactionMaySpendAndReferToAStateTogether() {
        var ledger = Ledger()
        #expect(ledger.notarise(tx(1), inputs: [ref(1)], references: [ref(1)]).0 == .committed)
        #expect(ledger.view.spentBy[ref(1)] == tx(1))
    }

    @Test func timeWindowIsJudgedByTheNotaryTime() {
        let window = TimeWindow(from: at(1_000), until: at(2_000))!
        let cases: [(Int64, Bool)] = [(999, false), (1_000, true), (1_500, true), (1_999, true), (2_000, false), (5_000, false)]
        for (i, (time, ok)) in cases.enumerated() {
            var ledger = Ledger()
            let (outcome, decision) = ledger.notarise(tx(UInt8(i)), inputs: [ref(1)], window: window, at: at(time))
            if ok {
                #expect(outcome == .committed, "at \(time)")
                #expect(decision.newlySpent.count == 1)
            } else {
                #expect(outcome == .timeWindowInvalid(notaryTime: at(time), window: window), "at \(time)")
                #expect(decision.newlySpent.isEmpty)
            }
        }
        var ledger = Ledger()
        #expect(ledger.notarise(tx(1), inputs: [], window: TimeWindow(from: at(5), until: nil), at: at(4)).0
                == .timeWindowInvalid(notaryTime: at(4), window: TimeWindow(from: at(5), until: nil)!))
        #expect(ledger.notarise(tx(2), inputs: [], window: TimeWindow(from: at(5), until: nil), at: at(.max)).0 == .committed)
        #expect(ledger.notarise(tx(3), inputs: [], window: TimeWindow(from: nil, until: at(5)), at: at(4)).0 == .committed)
        #expect(ledger.notarise(tx(4), inputs: [], window: TimeWindow(from: nil, until: at(5)), at: at(5)).0
                == .timeWindowInvalid(notaryTime: at(5), window: TimeWindow(from: nil, until: at(5))!))
        // Without a window any time will do.
        #expect(ledger.notarise(tx(5), inputs: [], at: at(.min)).0 == .committed)
    }

    @Test func eachRequestOfABatchUsesItsOwnEntryTime() {
        let window = TimeWindow(from: at(10), until: at(20))!
        let requests = (0..<4).map { UniquenessRequest(txId: tx(UInt8($0)), inputs: [ref(UInt8($0))], timeWindow: window) }
        let decision = UniquenessChecker.decide(
            [(requests[0], at(9)), (requests[1], at(10)), (requests[2], at(19)), (requests[3], at(20))], known: UniquenessView())
        #expect(decision.outcomes == [
            .timeWindowInvalid(notaryTime: at(9), window: window), .committed, .committed,
            .timeWindowInvalid(notaryTime: at(20), window: window),
        ])
        #expect(decision.newlySpent.map(\.ref) == [ref(1), ref(2)])
    }

    @Test func conflictsAreReportedBeforeTheTimeWindow() {
        var ledger = Ledger()
        ledger.notarise(tx(1), inputs: [ref(1)])
        let window = TimeWindow(from: at(100), until: nil)!
        #expect(ledger.notarise(tx(2), inputs: [ref(1)], window: window, at: at(0)).0
                == .conflict([Conflict(ref: ref(1), kind: .input, consumingTxIdHash: hashOf(tx(1)))]))
    }

    @Test func allOrNothing() {
        var ledger = Ledger()
        ledger.notarise(tx(1), inputs: [ref(3)])
        // One conflicting input: the free inputs are not spent either.
        let (conflict, d1) = ledger.notarise(tx(2), inputs: [ref(1), ref(2), ref(3)])
        #expect(!conflict.isCommitted)
        #expect(d1.newlySpent.isEmpty)
        // A conflicting reference: the inputs are not spent.
        let (refConflict, d2) = ledger.notarise(tx(3), inputs: [ref(1), ref(2)], references: [ref(3)])
        #expect(!refConflict.isCommitted)
        #expect(d2.newlySpent.isEmpty)
        // An invalid time window: nothing spent.
        let (late, d3) = ledger.notarise(tx(4), inputs: [ref(1), ref(2)], window: TimeWindow(from: nil, until: at(0)), at: at(0))
        #expect(!late.isCommitted)
        #expect(d3.newlySpent.isEmpty)
        #expect(ledger.view.spentBy == [ref(3): tx(1)])
        // So the free inputs remain available to another transaction.
        #expect(ledger.notarise(tx(5), inputs: [ref(1), ref(2)]).0 == .committed)
    }

    @Test func firstOutcomeIsFinal() {
        var ledger = Ledger()
        ledger.notarise(tx(1), inputs: [ref(1)])
        let (rejected, _) = ledger.notarise(tx(2), inputs: [ref(1), ref(2)])
        let expected = NotarisationOutcome.conflict([Conflict(ref: ref(1), kind: .input, consumingTxIdHash: hashOf(tx(1)))])
        #expect(rejected == expected)
        // Even if the conflicting fact disappeared from the view (it never should), the persisted
        // outcome wins: tx(2) gets the same rejection and spends nothing.
        ledger.view.spentBy[ref(1)] = nil
        let (again, decision) = ledger.notarise(tx(2), inputs: [ref(1), ref(2)])
        #expect(again == expected)
        #expect(decision.newlySpent.isEmpty && decision.newOutcomes.isEmpty)

        // A transaction rejected for its time window stays rejected when asked in time.
        let window = TimeWindow(from: at(100), until: at(200))!
        let (early, _) = ledger.notarise(tx(3), inputs: [ref(3)], window: window, at: at(50))
        #expect(early == .timeWindowInvalid(notaryTime: at(50), window: window))
        let (inTime, d2) = ledger.notarise(tx(3), inputs: [ref(3)], window: window, at: at(150))
        #expect(inTime == .timeWindowInvalid(notaryTime: at(50), window: window))
        #expect(d2.newlySpent.isEmpty)
        #expect(ledger.view.spentBy[ref(3)] == nil)
    }

    @Test func persistedOutcomeFromAnEarlierRunWins() {
        // The view says tx(1) was committed and spent ref(1); a later identical request is answered
        // from the view even though the batch would otherwise judge it again.
        let known = UniquenessView(spentBy: [ref(1): tx(1)], outcomes: [tx(1): .committed, tx(2): .conflict([])])
        let decision = UniquenessChecker.decide([
            (UniquenessRequest(txId: tx(1), inputs: [ref(1)]), at(0)),
            (UniquenessRequest(txId: tx(2), inputs: [ref(2)]), at(0)),
        ], known: known)
        #expect(decision.outcomes == [.committed, .conflict([])])
        #expect(decision.newOutcomes.isEmpty && decision.newlySpent.isEmpty)
    }

    @Test func aStateSpentByItsOwnTransactionIsNoConflict() {
        // The spend is persisted but the outcome is not in the view (the view is partial): the
        // transaction's own spend does not count against it.
        let known = UniquenessView(spentBy: [ref(1): tx(1)])
        let decision = UniquenessChecker.decide([(UniquenessRequest(txId: tx(1), inputs: [ref(1), ref(2)]), at(0))], known: known)
        #expect(decision.outcomes == [.committed])
        #expect(decision.newlySpent.map(\.ref) == [ref(2)])
    }

    @Test func conflictsInsideOneBatch() {
        let requests: [(request: UniquenessRequest, notaryTime: Instant)] = [
            (UniquenessRequest(txId: tx(1), inputs: [ref(1), ref(2)]), at(0)),
            (UniquenessRequest(txId: tx(2), inputs: [ref(2), ref(3)]), at(0)),  // ref(2) taken by tx(1)
            (UniquenessRequest(txId: tx(3), inputs: [ref(3)]), at(0)),  // free: tx(2) spent nothing
            (UniquenessRequest(txId: tx(4), inputs: [], references: [ref(1)]), at(0)),
            (UniquenessRequest(txId: tx(2), inputs: [ref(2), ref(3)]), at(0)),  // asked again: first outcome
        ]
        let decision = UniquenessChecker.decide(requests, known: UniquenessView())
        let tx2Conflict = NotarisationOutcome.conflict([Conflict(ref: ref(2), kind: .input, consumingTxIdHash: hashOf(tx(1)))])
        #expect(decision.outcomes == [
            .committed, tx2Conflict, .committed,
            .conflict([Conflict(ref: ref(1), kind: .reference, consumingTxIdHash: hashOf(tx(1)))]),
            tx2Conflict,
        ])
        #expect(decision.newOutcomes.map(\.txId) == [tx(1), tx(2), tx(3), tx(4)])
        #expect(decision.newlySpent.map(\.ref) == [ref(1), ref(2), ref(3)])
        #expect(decision.newlySpent.map(\.txId) == [tx(1), tx(1), tx(3)])
    }

    @Test func emptyBatch() {
        let decision = UniquenessChecker.decide([], known: UniquenessView(spentBy: [ref(1): tx(1)]))
        #expect(decision.outcomes.isEmpty && decision.newOutcomes.isEmpty && decision.newlySpent.isEmpty)
    }

    @Test func requestFromANotarisationRequest() {
        let key = SigningKey(seed: [UInt8](repeating: 1, count: 32))!
        let window = TimeWindow(from: at(1), until: at(2))!
        let r = NotarisationRequest.signed(txId: tx(1), inputs: [ref(1)], references: [ref(2)], timeWindow: window,
                                           requesterName: "A", key: key, notary: key.publicKey)
        #expect(UniquenessRequest(r) == UniquenessRequest(txId: tx(1), inputs: [ref(1)], references: [ref(2)], timeWindow: window))
    }

    @Test func decisionEquality() {
        func decide(_ id: SecureHash, _ input: StateRef, known: UniquenessView = UniquenessView()) -> BatchDecision {
            UniquenessChecker.decide([(UniquenessRequest(txId: id, inputs: [input]), at(0))], known: known)
        }
        let a = decide(tx(1), ref(1))
        #expect(a == decide(tx(1), ref(1)))
        #expect(a != decide(tx(2), ref(1)))  // another transaction
        #expect(a != decide(tx(1), ref(2)))  // another state spent
        #expect(a != decide(tx(1), ref(1), known: UniquenessView(spentBy: [ref(1): tx(2)])))  // another outcome
        #expect(a != decide(tx(1), ref(1), known: UniquenessView(outcomes: [tx(1): .committed])))  // nothing new
    }
}
