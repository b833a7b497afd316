import HawserCore
import Testing

/// Answers as a notary makes them: one Merkle tree per batch, its root signed once.
func signedBatch(_ outcomes: [(SecureHash, NotarisationOutcome)], notary: SigningKey) -> [NotarisationAnswer] {
    let tree = MerkleTree(leaves: outcomes.map { NotarisationAnswer.leafHash(txId: $0.0, outcome: $0.1) })
    let signature = notary.sign(NotarisationAnswer.batchSigningPayload(root: tree.root))
    return outcomes.enumerated().map { i, item in
        NotarisationAnswer(txId: item.0, outcome: item.1, proof: tree.proof(forLeaf: i), signature: signature)
    }
}

private func randomHash() -> SecureHash { SecureHash.sha256((0..<16).map { _ in UInt8.random(in: .min ... .max) }) }

@Suite(.timeLimit(.minutes(10))) struct AnswerVerifierTests {
    let notary = SigningKey()

    @Test func acceptsValidAnswersAndChecksEachBatchSignatureOnce() throws {
        let verifier = AnswerVerifier(notaryKey: notary.publicKey)
        let ids = (0..<7).map { _ in randomHash() }
        let batch = signedBatch(ids.map { ($0, .committed) }, notary: notary)
        for (answer, id) in zip(batch, ids) { try verifier.verify(answer, for: id) }
        #expect(verifier.signatureChecks == 1)
        let other = signedBatch([(ids[0], .committed)], notary: notary)
        try verifier.verify(other[0], for: ids[0])
        #expect(verifier.signatureChecks == 2)
        // Seen again: served from the cache.
        for (answer, id) in zip(batch, ids) { try verifier.verify(answer, for: id) }
        #expect(verifier.signatureChecks == 2)
    }

    @Test func acceptsEveryOutcomeKind() throws {
        let verifier = AnswerVerifier(notaryKey: notary.publicKey)
        let ref = StateRef(txId: randomHash(), index: 3)
        let window = TimeWindow(from: Instant(microsecondsSinceEpoch: 10), until: Instant(microsecondsSinceEpoch: 20))!
        let items: [(SecureHash, NotarisationOutcome)] = [
            (randomHash(), .committed),
            (randomHash(), .conflict([Conflict(ref: ref, kind: .input, consumingTxIdHash: randomHash())])),
            (randomHash(), .timeWindowInvalid(notaryTime: Instant(microsecondsSinceEpoch: 25), window: window)),
        ]
        for (answer, item) in zip(signedBatch(items, notary: notary), items) { try verifier.verify(answer, for: item.0) }
    }

    @Test func rejectsTamperedAnswers() throws {
        let verifier = AnswerVerifier(notaryKey: notary.publicKey)
        let ids = (0..<5).map { _ in randomHash() }
        let batch = signedBatch(ids.map { ($0, .committed) }, notary: notary)
        // Verify once so that the (root, signature) pair is cached: tampering must still be caught.
        try verifier.verify(batch[2], for: ids[2])

        var wrongOutcome = batch[2]
        wrongOutcome.outcome = .conflict([])
        #expect(throws: InvalidAnswerError.self) { try verifier.verify(wrongOutcome, for: ids[2]) }

        #expect(throws: InvalidAnswerError.self) { try verifier.verify(batch[1], for: ids[2]) }

        var otherId = batch[2]
        otherId.txId = ids[3]
        #expect(throws: InvalidAnswerError.self) { try verifier.verify(otherId, for: ids[3]) }

        var badPath = batch[2]
        badPath.proof.path[0] = randomHash()
        #expect(throws: InvalidAnswerError.self) { try verifier.verify(badPath, for: ids[2]) }

        var badIndex = batch[2]
        badIndex.proof.leafIndex = 9
        #expect(throws: InvalidAnswerError.self) { try verifier.verify(badIndex, for: ids[2]) }

        var badSignature = batch[2]
        badSignature.signature[5] ^= 1
        #expect(throws: InvalidAnswerError.self) { try verifier.verify(badSignature, for: ids[2]) }

        var shortSignature = batch[2]
        shortSignature.signature.removeLast()
        #expect(throws: InvalidAnswerError.self) { try verifier.verify(shortSignature, for: ids[2]) }
    }

    @Test func rejectsAnswersSignedByAnotherKey() {
        let verifier = AnswerVerifier(notaryKey: notary.publicKey)
        let id = randomHash()
        let forged = signedBatch([(id, .committed)], notary: SigningKey())[0]
        #expect(throws: InvalidAnswerError.self) { try verifier.verify(forged, for: id) }
        #expect(throws: InvalidAnswerError.self) { try verifier.verify(forged, for: id) }
        #expect(verifier.signatureChecks == 2, "failures are never cached")
    }

    @Test func cacheIsBounded() throws {
        let verifier = AnswerVerifier(notaryKey: notary.publicKey, cacheCapacity: 2)
        let answers = (0..<3).map { _ in signedBatch([(randomHash(), .committed)], notary: notary)[0] }
        for answer in answers { try verifier.verify(answer, for: answer.txId) }
        #expect(verifier.signatureChecks == 3)
        try verifier.verify(answers[2], for: answers[2].txId)
        try verifier.verify(answers[1], for: answers[1].txId)
        #expect(verifier.signatureChecks == 3)
        try verifier.verify(answers[0], for: answers[0].txId)  // evicted, checked again
        #expect(verifier.signatureChecks == 4)
    }
}
