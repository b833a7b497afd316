import HawserCore
import HawserTestSupport
import Testing
@testable import hawser

/// The bench's invariant checker: what lets `hawser bench notary` claim that every run was checked.
@Suite(.timeLimit(.minutes(10))) struct LoadCheckTests {
    var ids = Ids(seed: 77)

    /// An answer as the checker sees it (it judges outcomes; signatures were verified before).
    func answer(_ request: NotarisationRequest, _ outcome: NotarisationOutcome) -> RequestOutcome {
        .answer(NotarisationAnswer(txId: request.txId, outcome: outcome,
                                   proof: MerkleProof(leafIndex: 0, leafCount: 1, path: []), signature: []))
    }

    /// Two transactions spending one input: the second is a double-spend attempt.
    mutating func twins() -> (NotaryWorkload, NotarisationRequest, NotarisationRequest) {
        let shared = ids.ref()
        let first = signed(ids.hash(), inputs: [shared]), second = signed(ids.hash(), inputs: [shared, ids.ref()])
        return (NotaryWorkload(requests: [first, second], twinOf: [1: 0]), first, second)
    }

    func report(_ workload: NotaryWorkload, _ outcomes: [RequestOutcome]) -> LoadReport {
        var report = LoadReport()
        NotaryLoad.check(workload, outcomes, into: &report)
        return report
    }

    @Test mutating func consistentOutcomesPass() {
        let (workload, first, second) = twins()
        let conflict = NotarisationOutcome.conflict([Conflict(ref: first.inputs[0], kind: .input,
                                                              consumingTxIdHash: .sha256(first.txId.bytes))])
        let r = report(workload, [answer(first, .committed), answer(second, conflict)])
        #expect(r.passed)
        #expect(r.committed == 1 && r.conflicts == 1 && r.doubleSpendAttempts == 1)
    }

    @Test mutating func anInputCommittedTwiceIsAViolation() {
        let (workload, first, second) = twins()
        let r = report(workload, [answer(first, .committed), answer(second, .committed)])
        #expect(!r.passed)
        #expect(r.violations.contains { $0.contains("committed by 2 transactions") })
    }

    @Test mutating func aConflictNoTransactionOfTheRunExplainsIsAViolation() {
        let (workload, first, second) = twins()
        let stranger = NotarisationOutcome.conflict([Conflict(ref: second.inputs[1], kind: .input,
                                                              consumingTxIdHash: .sha256(ids.hash().bytes))])
        let r = report(workload, [answer(first, .committed), answer(second, stranger)])
        #expect(!r.passed)
        #expect(r.violations.contains { $0.contains("unexplained conflict") })
    }

    @Test mutating func aTimeWindowRejectionWithoutAWindowIsAViolation() {
        let (workload, first, second) = twins()
        let window = TimeWindow(from: nil, until: Instant(microsecondsSinceEpoch: 1))!
        let r = report(workload, [answer(first, .committed),
                                  answer(second, .timeWindowInvalid(notaryTime: Instant(microsecondsSinceEpoch: 2), window: window))])
        #expect(!r.passed)
        #expect(r.violations.contains { $0.contains("time_window_invalid") })
    }

    @Test mutating func anAnswerThatFailedVerificationFailsTheRun() {
        let (workload, first, _) = twins()
        let r = report(workload, [answer(first, .committed), .invalidAnswer("bad signature")])
        #expect(!r.passed)
        #expect(r.invalidAnswers == 1)
    }
}
