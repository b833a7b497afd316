import Embedded
import Foundation
import HawserCore
import HawserWire
import Notary
import HawserTestSupport
import Testing

/// The notarisation rules, end to end through the front, the durable log, the replica and SQLite.
@Suite(.timeLimit(.minutes(10))) struct NotarisationTests {
    @Test func spendsInputsAndAnswersWithAVerifiableSignedOutcome() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 2)
        let (tx, input, reference) = (ids.hash(), ids.ref(), ids.ref())
        try await NotaryHarness.with(directory: dir.path) { (h: NotaryHarness) async throws in
            let answer = try await h.notary.notarise(request(tx, inputs: [input], references: [reference]))
            #expect(answer.outcome == .committed)
            #expect(answer.txId == tx)
            #expect(answer.isValid(notary: Verifier(notaryKey.publicKey)))
            #expect(try await h.store.consumer(of: input) == tx)
            #expect(try await h.store.consumer(of: reference) == nil, "references are never spent")
        }
    }

    @Test func aSecondSpendConflictsAndNamesTheHashOfTheConsumer() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 3)
        let (first, second, third, a, b, fresh) = (ids.hash(), ids.hash(), ids.hash(), ids.ref(), ids.ref(), ids.ref())
        try await NotaryHarness.with(directory: dir.path) { (h: NotaryHarness) async throws in
            _ = try await h.notary.notarise(request(first, inputs: [a, b]))
            let answer = try await h.notary.notarise(request(second, inputs: [fresh, a], references: [b]))
            let consumer = SecureHash.sha256(first.bytes)
            #expect(answer.outcome == .conflict([Conflict(ref: a, kind: .input, consumingTxIdHash: consumer),
                                                 Conflict(ref: b, kind: .reference, consumingTxIdHash: consumer)]))
            #expect(answer.isValid(notary: Verifier(notaryKey.publicKey)))
            #expect(try await h.store.consumer(of: fresh) == nil, "a rejected transaction spends nothing")
            // The unspent input is still free for another transaction.
            #expect(try await h.notary.notarise(request(third, inputs: [fresh])).outcome == .committed)
        }
    }

    @Test func renotarisingIsIdempotentAndTheFirstOutcomeIsFinal() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 4)
        let (winner, loser, a, b) = (ids.hash(), ids.hash(), ids.ref(), ids.ref())
        try await NotaryHarness.with(directory: dir.path) { (h: NotaryHarness) async throws in
            #expect(try await h.notary.notarise(request(winner, inputs: [a])).outcome == .committed)
            #expect(try await h.notary.notarise(request(winner, inputs: [a])).outcome == .committed)
            let rejected = try await h.notary.notarise(request(loser, inputs: [b, a])).outcome
            #expect(!rejected.isCommitted)
            // Asked again, even with different inputs, the loser keeps its first outcome.
            #expect(try await h.notary.notarise(request(loser, inputs: [b])).outcome == rejected)
            #expect(try await h.store.consumer(of: b) == nil)
            #expect(try await h.notary.answer(for: loser).outcome == rejected)
        }
    }

    @Test func timeWindowsAreJudgedByTheLogEntryTimestamp() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 5)
        let clock = ManualClock()
        let t = Instant(microsecondsSinceEpoch: 1_900_000_000_000_000)
        let window = TimeWindow(from: t, until: Instant(microsecondsSinceEpoch: t.microsecondsSinceEpoch + 1_000_000))!
        let (early, onTime, atUntil, a, b, c) = (ids.hash(), ids.hash(), ids.hash(), ids.ref(), ids.ref(), ids.ref())
        try await NotaryHarness.with(directory: dir.path, clock: clock) { (h: NotaryHarness) async throws in
            clock.set(Instant(microsecondsSinceEpoch: t.microsecondsSinceEpoch - 1))
            #expect(try await h.notary.notarise(request(early, inputs: [a], window: window)).outcome
                == .timeWindowInvalid(notaryTime: clock.read(), window: window))
            #expect(try await h.store.consumer(of: a) == nil)
            clock.set(t)  // `from` is inclusive
            #expect(try await h.notary.notarise(request(onTime, inputs: [b], window: window)).outcome == .committed)
            clock.set(window.until!)  // `until` is exclusive
            #expect(try await h.notary.notarise(request(atUntil, inputs: [c], window: window)).outcome
                == .timeWindowInvalid(notaryTime: window.until!, window: window))
        }
    }

    @Test func aBatchSeesConflictsInsideItselfAndRefusesBadItemsAlone() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 6)
        let (t1, t2, t3, a, b) = (ids.hash(), ids.hash(), ids.hash(), ids.ref(), ids.ref())
        var forged = request(t3, inputs: [b])
        forged.signature[5] ^= 0xff
        try await NotaryHarness.with(directory: dir.path) { (h: NotaryHarness) async throws in
            let results = await h.notary.notarise(batch: [request(t1, inputs: [a]), request(t2, inputs: [a]), forged])
            #expect(try results[0].get().outcome == .committed)
            #expect(try results[1].get().outcome == .conflict([Conflict(ref: a, kind: .input, consumingTxIdHash: .sha256(t1.bytes))]))
            #expect(throws: APIError.self) { try results[2].get() }
            #expect(try await h.store.consumer(of: b) == nil)
            #expect(try await h.store.outcome(of: t3) == nil)
        }
    }

    @Test func badInputChangesNothing() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 7)
        try await NotaryHarness.with(directory: dir.path) { (h: NotaryHarness) async throws in
            _ = try await h.notary.notarise(request(ids.hash(), inputs: [ids.ref()]))
            let before = try await h.store.digest()
            let position = try await h.log.lastPosition()
            let a = ids.ref()
            var forged = request(ids.hash(), inputs: [ids.ref()])
            forged.txId = ids.hash()
            let stranger = SigningKey(seed: [UInt8](repeating: 9, count: 32))!
            for bad in [request(ids.hash(), inputs: [a, a]), request(ids.hash(), inputs: [a], references: [a]), forged,
                        request(ids.hash(), inputs: [ids.ref()], by: stranger, name: "O=Mallory"),
                        request(ids.hash(), inputs: [])] {
                await #expect(throws: APIError.self) { try await h.notary.notarise(bad) }
            }
            #expect(try await h.store.digest() == before)
            #expect(try await h.log.lastPosition() == position, "nothing invalid reaches the log")
        }
    }

    @Test func lookupsReturnSignedOutcomesOrNotFound() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 8)
        let tx = ids.hash()
        try await NotaryHarness.with(directory: dir.path) { (h: NotaryHarness) async throws in
            _ = try await h.notary.notarise(request(tx, inputs: [ids.ref()]))
            let answer = try await h.notary.answer(for: tx)
            #expect(answer.outcome == .committed && answer.isValid(notary: Verifier(notaryKey.publicKey)))
            await #expect { try await h.notary.answer(for: ids.hash()) } throws: { ($0 as? APIError)?.code == .transactionNotFound }
        }
    }

    @Test func concurrentRequestsShareLogEntriesAndNoStateIsSpentTwice() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 9)
        let shared = (0..<20).map { _ in ids.ref() }
        // 400 transactions, each spending one fresh input and one of 20 contested ones.
        let requests = (0..<400).map { i in request(ids.hash(), inputs: [ids.ref(), shared[i % 20]]) }
        try await NotaryHarness.with(directory: dir.path) { (h: NotaryHarness) async throws in
            let answers = try await withThrowingTaskGroup(of: NotarisationAnswer.self) { group in
                for r in requests { group.addTask { try await h.notary.notarise(r) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let committed = answers.filter(\.outcome.isCommitted)
            #expect(committed.count == 20, "exactly one winner per contested state")
            #expect(try await h.log.lastPosition() < 400, "concurrent requests were grouped into fewer log entries")
            for answer in committed {
                let r = requests.first { $0.txId == answer.txId }!
                #expect(try await h.store.consumer(of: r.inputs[1]) == answer.txId)
            }
        }
    }
}
