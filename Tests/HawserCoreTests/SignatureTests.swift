import Foundation
import Testing
import HawserCore
import HawserTestSupport

@Suite(.timeLimit(.minutes(10))) struct KeyTests {
    @Test func rfc8032TestVector1() {
        // RFC 8032 section 7.1, TEST 1: the empty message.
        let key = SigningKey(seed: Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")!)!
        #expect(Hex.encode(key.publicKey.rawBytes) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let expected = Hex.decode("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065"
            + "224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")!
        #expect(key.publicKey.isValidSignature(expected, for: []))
        #if !canImport(Darwin)
        // swift-crypto on Linux signs deterministically, as RFC 8032 specifies.
        #expect(key.sign([]) == expected)
        #endif
    }

    /// The encodings of the eight points of small order, with either sign bit (libsodium's list,
    /// computed again here from the curve: each times 8 is the identity).
    static let smallOrderKeys = [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA=",
        "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA=",
        "JuiVj8KyJ7BFw/SJ8u+Y8NXfrAXTxjM5sTgCiG1T/AU=", "JuiVj8KyJ7BFw/SJ8u+Y8NXfrAXTxjM5sTgCiG1T/IU=",
        "xxdqcD1N2E+6PAt2DRBnDyogU/osOczGTsf9d5KsA3o=", "xxdqcD1N2E+6PAt2DRBnDyogU/osOczGTsf9d5KsA/o=",
        "7P///////////////////////////////////////38=", "7P////////////////////////////////////////8=",
        "7f///////////////////////////////////////38=", "7f////////////////////////////////////////8=",
        "7v///////////////////////////////////////38=", "7v////////////////////////////////////////8=",
    ]

    /// Why keys of small order are refused wherever a configuration names one: BoringSSL verifies
    /// a signature made with no private key under them. Under the all-zero key (order 4) the
    /// signature R = the identity, S = 0 holds for a quarter of all messages.
    @Test func aKeyOfSmallOrderIsRefusedForItsSignaturesCanBeForged() throws {
        let keys = Self.smallOrderKeys.map { PublicKey(base64: $0) }
        #expect(keys.allSatisfy { $0?.hasSmallOrder == true }, "every one parses, and is of small order")
        #expect((0..<200).allSatisfy { _ in !SigningKey().publicKey.hasSmallOrder })
        let zero = try #require(keys[0])
        let forged = [1] + [UInt8](repeating: 0, count: 63)
        let accepted = (0..<64).filter { zero.isValidSignature(forged, for: Array("message \($0)".utf8)) }
        #expect(!accepted.isEmpty, "forged signatures verify under a key of small order")
    }

    @Test func seedRoundTripAndLengths() {
        let key = Fixtures.key(7)
        #expect(key.seed == [UInt8](repeating: 7, count: 32))
        #expect(SigningKey(seed: key.seed)?.publicKey == key.publicKey)
        #expect(SigningKey(seed: [UInt8](repeating: 7, count: 31)) == nil)
        #expect(SigningKey(seed: [UInt8](repeating: 7, count: 33)) == nil)
        #expect(SigningKey(seed: []) == nil)
        let fresh = SigningKey(), other = SigningKey()
        #expect(fresh.publicKey != other.publicKey)
        #expect(SigningKey(seed: fresh.seed)?.publicKey == fresh.publicKey)
    }

    @Test func publicKeyForms() {
        let pk = Fixtures.key(1).publicKey
        #expect(pk.rawBytes.count == 32)
        #expect(pk.base64.count == 44 && pk.base64.hasSuffix("="))
        #expect(pk.description == pk.base64)
        #expect(PublicKey(base64: pk.base64) == pk)
        #expect(PublicKey(rawBytes: pk.rawBytes) == pk)
        #expect(PublicKey(base64: String(pk.base64.dropLast())) == nil)  // padding is required
        #expect(PublicKey(base64: "!" + pk.base64.dropFirst()) == nil)
        #expect(PublicKey(base64: Data(pk.rawBytes + [0]).base64EncodedString()) == nil)
        #expect(PublicKey(base64: Data(pk.rawBytes.dropLast()).base64EncodedString()) == nil)
        #expect(PublicKey(base64: "") == nil)
        #expect(PublicKey(rawBytes: []) == nil)
        #expect(PublicKey(rawBytes: [UInt8](repeating: 1, count: 31)) == nil)
        #expect(PublicKey(rawBytes: [UInt8](repeating: 1, count: 33)) == nil)
    }

    @Test func signaturesBindKeyAndMessage() {
        let a = Fixtures.key(1), b = Fixtures.key(2)
        let message = Array("hello".utf8)
        let sig = a.sign(message)
        #expect(sig.count == 64)
        #expect(a.publicKey.isValidSignature(sig, for: message))
        #expect(Verifier(a.publicKey).isValidSignature(sig, for: message))
        #expect(!b.publicKey.isValidSignature(sig, for: message))
        #expect(!a.publicKey.isValidSignature(sig, for: Array("hellp".utf8)))
        #expect(!a.publicKey.isValidSignature(sig, for: message + [0]))
        #expect(!a.publicKey.isValidSignature(Array(sig.dropLast()), for: message))
        #expect(!a.publicKey.isValidSignature(sig + [0], for: message))
        #expect(!a.publicKey.isValidSignature([], for: message))
        for i in stride(from: 0, to: 64, by: 5) {
            var bad = sig
            bad[i] ^= 0x40
            #expect(!a.publicKey.isValidSignature(bad, for: message), "byte \(i)")
        }
    }
}

/// A signed request and every single-field change to it.
private struct RequestCase {
    static let requester = Fixtures.key(1)
    static let notary = Fixtures.key(2).publicKey
    static let otherNotary = Fixtures.key(3).publicKey
    static let t0 = Fixtures.instant("2026-01-01T00:00:00Z")
    static let t1 = Fixtures.instant("2026-01-01T00:10:00Z")

    static func base() -> NotarisationRequest {
        NotarisationRequest.signed(
            txId: Fixtures.hash(0x10),
            inputs: [StateRef(txId: Fixtures.hash(0x11), index: 0), StateRef(txId: Fixtures.hash(0x12), index: 3)],
            references: [StateRef(txId: Fixtures.hash(0x13), index: 1)],
            timeWindow: TimeWindow(from: t0, until: t1), requesterName: "Alice", key: requester, notary: notary)
    }

    static func mutations() -> [(String, (inout NotarisationRequest) -> Void)] {
        let extra = StateRef(txId: Fixtures.hash(0x14), index: 0)
        let otherParty = Party(name: "Alice", publicKey: Fixtures.key(4).publicKey)
        return [
            ("txId", { $0.txId = Fixtures.hash(0x20) }),
            ("input tx", { $0.inputs[0].txId = Fixtures.hash(0x21) }),
            ("input index", { $0.inputs[1].index = 4 }),
            ("input added", { $0.inputs.append(extra) }),
            ("input removed", { $0.inputs.removeLast() }),
            ("inputs reordered", { $0.inputs.reverse() }),
            ("input made a reference", { $0.references.insert($0.inputs.removeLast(), at: 0) }),
            ("reference made an input", { $0.inputs.append($0.references.removeFirst()) }),
            ("reference changed", { $0.references[0].index = 2 }),
            ("reference added", { $0.references.append(extra) }),
            ("references removed", { $0.references = [] }),
            ("window removed", { $0.timeWindow = nil }),
            ("window from", { $0.timeWindow = TimeWindow(from: Instant(microsecondsSinceEpoch: t0.microsecondsSinceEpoch + 1), until: t1) }),
            ("window until", { $0.timeWindow = TimeWindow(from: t0, until: Instant(microsecondsSinceEpoch: t1.microsecondsSinceEpoch - 1)) }),
            ("window open from", { $0.timeWindow = TimeWindow(from: nil, until: t1) }),
            ("window open until", { $0.timeWindow = TimeWindow(from: t0, until: nil) }),
            ("requester name", { $0.requester.name = "Alicf" }),
            ("requester name case", { $0.requester.name = "alice" }),
            ("requester name empty", { $0.requester.name = "" }),
            ("requester key", { $0.requester = otherParty }),
        ]
    }
}

@Suite(.timeLimit(.minutes(10))) struct RequestSignatureTests {
    @Test func signedRequestVerifies() {
        let r = RequestCase.base()
        #expect(r.requester.publicKey == RequestCase.requester.publicKey)
        #expect(r.requester.name == "Alice")
        #expect(r.signature.count == 64)
        #expect(r.requester.publicKey.isValidSignature(r.signature, for: r.signingPayload(notary: RequestCase.notary)))
    }

    @Test func payloadStartsWithTagAndNotary() {
        let payload = RequestCase.base().signingPayload(notary: RequestCase.notary)
        let tag = Array(ProtocolTag.request.utf8)
        #expect(Array(payload.prefix(4 + tag.count + 32)) == [0, 0, 0, UInt8(tag.count)] + tag + RequestCase.notary.rawBytes)
        #expect(Array(payload.suffix(32)) == RequestCase.requester.publicKey.rawBytes)
    }

    @Test func anotherNotaryIsRefused() {
        let r = RequestCase.base()
        #expect(r.signingPayload(notary: RequestCase.otherNotary) != r.signingPayload(notary: RequestCase.notary))
        #expect(!r.requester.publicKey.isValidSignature(r.signature, for: r.signingPayload(notary: RequestCase.otherNotary)))
    }

    @Test func anyChangedFieldBreaksTheSignature() {
        let base = RequestCase.base()
        let basePayload = base.signingPayload(notary: RequestCase.notary)
        var payloads = Set([basePayload])
        for (name, mutate) in RequestCase.mutations() {
            var r = base
            mutate(&r)
            let payload = r.signingPayload(notary: RequestCase.notary)
            #expect(payload != basePayload, "\(name)")
            #expect(payloads.insert(payload).inserted, "\(name) collides with another change")
            #expect(!r.requester.publicKey.isValidSignature(r.signature, for: payload), "\(name)")
            // Re-signing the changed request makes it valid again: the check is about the bytes.
            let resigned = NotarisationRequest.signed(txId: r.txId, inputs: r.inputs, references: r.references,
                                                      timeWindow: r.timeWindow, requesterName: r.requester.name,
                                                      key: RequestCase.requester, notary: RequestCase.notary)
            #expect(resigned.requester.publicKey.isValidSignature(resigned.signature,
                                                                  for: resigned.signingPayload(notary: RequestCase.notary)))
        }
    }

    @Test func tamperedSignatureFails() {
        let r = RequestCase.base()
        let payload = r.signingPayload(notary: RequestCase.notary)
        for i in 0..<64 {
            var sig = r.signature
            sig[i] ^= 1
            #expect(!r.requester.publicKey.isValidSignature(sig, for: payload), "byte \(i)")
        }
    }

    /// Different requests never share a payload: the encoding is injective on random requests.
    @Test func randomRequestsHaveDistinctPayloads() {
        var rng = SeededGenerator(seed: 30)
        let key = Fixtures.key(5)
        var seen = [[UInt8]: NotarisationRequest]()
        for _ in 0..<2000 {
            // Small pools make near-collisions (same refs split differently, etc.) likely.
            let refs = (0..<3).map { StateRef(txId: Fixtures.hash(UInt8($0)), index: UInt32($0 % 2)) }
            func pick() -> [StateRef] { (0..<Int.random(in: 0...2, using: &rng)).map { _ in refs.randomElement(using: &rng)! } }
            let r = NotarisationRequest(
                txId: Fixtures.hash(UInt8.random(in: 0...1, using: &rng)), inputs: pick(), references: pick(),
                timeWindow: Bool.random(using: &rng) ? nil : TimeWindow(
                    from: Bool.random(using: &rng) ? nil : Instant(microsecondsSinceEpoch: 1),
                    until: Bool.random(using: &rng) ? nil : Instant(microsecondsSinceEpoch: 2)),
                requester: Party(name: ["", "a", "ab", "b"].randomElement(using: &rng)!, publicKey: key.publicKey),
                signature: [])
            let payload = r.signingPayload(notary: RequestCase.notary)
            if let previous = seen[payload] { #expect(previous == r) } else { seen[payload] = r }
        }
        #expect(seen.count > 500)
    }
}

@Suite(.timeLimit(.minutes(10))) struct AnswerSignatureTests {
    static let notaryKey = Fixtures.key(2)

    /// Signs a batch of `outcomes` as the notary does: one Merkle tree, one signature over its root.
    static func answers(_ items: [(SecureHash, NotarisationOutcome)], key: SigningKey = notaryKey) -> [NotarisationAnswer] {
        let tree = MerkleTree(leaves: items.map { NotarisationAnswer.leafHash(txId: $0.0, outcome: $0.1) })
        let signature = key.sign(NotarisationAnswer.batchSigningPayload(root: tree.root))
        return items.enumerated().map { i, item in
            NotarisationAnswer(txId: item.0, outcome: item.1, proof: tree.proof(forLeaf: i), signature: signature)
        }
    }

    @Test func leafAndBatchPayloadLayouts() {
        let tx = Fixtures.hash(0x10)
        let outcomeTag = Array(ProtocolTag.outcome.utf8), batchTag = Array(ProtocolTag.batch.utf8)
        let leaf = NotarisationAnswer.leafPayload(txId: tx, outcome: .committed)
        #expect(leaf == [0, 0, 0, UInt8(outcomeTag.count)] + outcomeTag + tx.bytes + [0])
        #expect(NotarisationAnswer.leafHash(txId: tx, outcome: .committed) == SecureHash.sha256([0] + leaf))
        let root = Fixtures.hash(0x33)
        #expect(NotarisationAnswer.batchSigningPayload(root: root) == [0, 0, 0, UInt8(batchTag.count)] + batchTag + root.bytes)
    }

    @Test func randomBatchesVerify() {
        var rng = SeededGenerator(seed: 31)
        let verifier = Verifier(Self.notaryKey.publicKey)
        let stranger = Verifier(Fixtures.key(3).publicKey)
        for _ in 0..<60 {
            let items = (0..<Int.random(in: 1...20, using: &rng)).map { _ in (rng.hash(), rng.outcome()) }
            let batch = Self.answers(items)
            let root = MerkleTree(leaves: items.map { NotarisationAnswer.leafHash(txId: $0.0, outcome: $0.1) }).root
            for answer in batch {
                #expect(answer.root == root)
                #expect(answer.isValid(notary: verifier))
                #expect(!answer.isValid(notary: stranger))
            }
        }
    }

    @Test func tamperedAnswersFail() {
        let t = Fixtures.instant("2026-01-01T00:00:00Z")
        let window = TimeWindow(from: t, until: Instant(microsecondsSinceEpoch: t.microsecondsSinceEpoch + 1_000_000))!
        let conflict = Conflict(ref: StateRef(txId: Fixtures.hash(0x11), index: 0), kind: .input,
                                consumingTxIdHash: SecureHash.sha256(Fixtures.hash(0x10).bytes))
        let batch = Self.answers([
            (Fixtures.hash(0x10), .committed),
            (Fixtures.hash(0x20), .conflict([conflict])),
            (Fixtures.hash(0x30), .timeWindowInvalid(notaryTime: t, window: window)),
            (Fixtures.hash(0x40), .committed),
            (Fixtures.hash(0x50), .conflict([])),
        ])
        let verifier = Verifier(Self.notaryKey.publicKey)
        let otherOutcomes: [NotarisationOutcome] = [
            .committed, .conflict([]), .conflict([conflict]),
            .conflict([Conflict(ref: conflict.ref, kind: .reference, consumingTxIdHash: conflict.consumingTxIdHash)]),
            .conflict([Conflict(ref: conflict.ref, kind: .input, consumingTxIdHash: Fixtures.hash(0x10))]),
            .conflict([conflict, conflict]),
            .timeWindowInvalid(notaryTime: t, window: window),
            .timeWindowInvalid(notaryTime: Instant(microsecondsSinceEpoch: t.microsecondsSinceEpoch + 1), window: window),
            .timeWindowInvalid(notaryTime: t, window: TimeWindow(from: t, until: nil)!),
        ]
        for (i, answer) in batch.enumerated() {
            #expect(answer.isValid(notary: verifier))
            for outcome in otherOutcomes where outcome != answer.outcome {
                var a = answer
                a.outcome = outcome
                #expect(!a.isValid(notary: verifier), "answer \(i) outcome \(outcome)")
            }
            var a = answer
            a.txId = Fixtures.hash(0x99)
            #expect(!a.isValid(notary: verifier))
            // Another answer's transaction id with this answer's proof.
            a = answer
            a.txId = batch[(i + 1) % batch.count].txId
            #expect(!a.isValid(notary: verifier))
            for j in 0..<UInt32(6) where j != answer.proof.leafIndex {
                a = answer
                a.proof.leafIndex = j
                #expect(!a.isValid(notary: verifier), "answer \(i) index \(j)")
            }
            for c in 0...9 where c != 5 {
                a = answer
                a.proof.leafCount = UInt32(c)
                // Only a count that gives this leaf the same proof shape still leads to the root.
                let sameShape = i < c && proofShape(i, c) == proofShape(i, 5)
                #expect(a.isValid(notary: verifier) == sameShape, "answer \(i) count \(c)")
            }
            for k in answer.proof.path.indices {
                a = answer
                var bytes = a.proof.path[k].bytes
                bytes[31] ^= 1
                a.proof.path[k] = SecureHash(bytes: bytes)!
                #expect(!a.isValid(notary: verifier))
            }
            a = answer
            a.proof.path.append(Fixtures.hash(0))
            #expect(!a.isValid(notary: verifier))
            a = answer
            a.signature[10] ^= 0x80
            #expect(!a.isValid(notary: verifier))
            a = answer
            a.signature = []
            #expect(!a.isValid(notary: verifier))
        }
        // A batch signed by another key does not pass as this notary's.
        let forged = Self.answers([(Fixtures.hash(0x10), .committed)], key: Fixtures.key(3))
        #expect(!forged[0].isValid(notary: verifier))
        // Signing the root directly (without the batch tag) is not a valid answer either.
        var untagged = batch[0]
        untagged.signature = Self.notaryKey.sign(batch[0].root!.bytes)
        #expect(!untagged.isValid(notary: verifier))
    }
}
