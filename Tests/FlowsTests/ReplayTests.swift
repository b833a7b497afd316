import Flows
import Testing

/// The sans-I/O replay core, driven by hand.
@Suite(.timeLimit(.minutes(10))) struct ReplayTests {
    func entry(_ sequence: Int, _ kind: String, _ descriptor: String = "", _ result: String = "1") -> JournalEntry {
        JournalEntry(sequence: sequence, kind: kind, descriptor: descriptor, result: Array(result.utf8))
    }

    @Test func newGroundExecutesAndRecords() throws {
        var replay = Replay(journal: [])
        #expect(try replay.next(kind: "now", descriptor: "") == .execute(sequence: 0))
        replay.record(entry(0, "now"))
        #expect(try replay.next(kind: "random", descriptor: "") == .execute(sequence: 1))
        replay.record(entry(1, "random"))
        #expect(replay.journal.count == 2)
        try replay.finish()
    }

    @Test func replayReturnsRecordedResultsThenReachesNewGround() throws {
        var replay = Replay(journal: [entry(0, "now", "", "42"), entry(1, "notarise", "abc", "7")])
        #expect(replay.isReplaying)
        #expect(try replay.next(kind: "now", descriptor: "") == .replay(Array("42".utf8)))
        #expect(try replay.next(kind: "notarise", descriptor: "abc") == .replay(Array("7".utf8)))
        #expect(!replay.isReplaying)
        #expect(try replay.next(kind: "record", descriptor: "abc") == .execute(sequence: 2))
    }

    @Test func aDifferentEffectIsNonDeterminism() {
        var replay = Replay(journal: [entry(0, "notarise", "abc")])
        #expect(throws: NonDeterminismError(sequence: 0, expected: "notarise(abc)", actual: "notarise(def)", detail: nil)) {
            try replay.next(kind: "notarise", descriptor: "def")
        }
        var other = Replay(journal: [entry(0, "notarise", "abc")])
        #expect(throws: NonDeterminismError.self) { try other.next(kind: "sleep", descriptor: "abc") }
    }

    @Test func returningBeforeTheJournalEndsIsNonDeterminism() throws {
        var replay = Replay(journal: [entry(0, "now"), entry(1, "random")])
        _ = try replay.next(kind: "now", descriptor: "")
        #expect(throws: NonDeterminismError.self) { try replay.finish() }
    }

    @Test func concurrentEffectsAreRefused() throws {
        var replay = Replay(journal: [])
        _ = try replay.next(kind: "external", descriptor: "a")
        #expect(throws: NonDeterminismError.self) { try replay.next(kind: "external", descriptor: "b") }
        replay.abandon()
        #expect(try replay.next(kind: "external", descriptor: "b") == .execute(sequence: 0))
    }

    @Test func patchOnNewGroundRecordsAMarker() {
        var replay = Replay(journal: [])
        #expect(replay.patched("v2") == .recordMarker(sequence: 0))
        replay.record(entry(0, EffectKind.patch, "v2", "null"))
        #expect(replay.journal.map(\.kind) == [EffectKind.patch])
    }

    @Test func patchReplaysFromTheMarker() throws {
        var replay = Replay(journal: [entry(0, EffectKind.patch, "v2", "null"), entry(1, "random")])
        #expect(replay.patched("v2") == .taken(true))
        #expect(try replay.next(kind: "random", descriptor: "") == .replay(Array("1".utf8)))
    }

    @Test func oldJournalWithoutMarkerTakesTheOldPath() throws {
        // Recorded before the patch existed: the old code asked for `now` here.
        var replay = Replay(journal: [entry(0, "now"), entry(1, "random")])
        #expect(replay.patched("v2") == .taken(false))
        #expect(try replay.next(kind: "now", descriptor: "") == .replay(Array("1".utf8)))
        #expect(try replay.next(kind: "random", descriptor: "") == .replay(Array("1".utf8)))
        try replay.finish()
    }
}

@Suite(.timeLimit(.minutes(10))) struct HospitalPolicyTests {
    let policy = HospitalPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(1), maxAttempts: 3)

    @Test func backOffDoublesUpToTheCap() {
        #expect(policy.delay(attempt: 0) == .milliseconds(100))
        #expect(policy.delay(attempt: 1) == .milliseconds(200))
        #expect(policy.delay(attempt: 3) == .milliseconds(800))
        #expect(policy.delay(attempt: 4) == .seconds(1))
        #expect(policy.delay(attempt: 200) == .seconds(1))
    }

    @Test func transientErrorsAreRetriedThenParked() {
        #expect(policy.treat(TransientFlowError("db"), attempts: 0) == .retry(after: .milliseconds(100)))
        #expect(policy.treat(TransientFlowError("db"), attempts: 2) == .retry(after: .milliseconds(400)))
        guard case .park(let reason) = policy.treat(TransientFlowError("db"), attempts: 3) else {
            Issue.record("expected the flow to be parked")
            return
        }
        #expect(reason.contains("db"))
    }

    @Test func failuresFailAndOtherErrorsPark() {
        #expect(policy.treat(FlowFailure("no funds"), attempts: 0) == .fail("no funds"))
        struct Bug: Error {}
        guard case .park = policy.treat(Bug(), attempts: 0) else {
            Issue.record("expected an unexpected error to be parked")
            return
        }
        guard case .park(let reason) = policy.treat(NonDeterminismError(sequence: 3, expected: "a()", actual: "b()"),
                                                    attempts: 0) else {
            Issue.record("expected non-determinism to be parked")
            return
        }
        #expect(reason.contains("non-determinism at effect 3"))
    }

    @Test func invalidSettingsAreReported() {
        #expect(HospitalPolicy().problems.isEmpty)
        #expect(HospitalPolicy(initialDelay: .zero).problems.count == 1)
        #expect(HospitalPolicy(initialDelay: .seconds(2), maxDelay: .seconds(1)).problems.count == 1)
    }
}
