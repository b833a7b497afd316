import HawserCore
import HawserWire
import Notary
import HawserTestSupport
import Testing

@Suite(.timeLimit(.minutes(10))) struct RequestValidatorTests {
    let validator = RequestValidator(notary: notaryKey.publicKey, authorisedParties: parties, maxStateRefs: 4)
    var ids = Ids(seed: 1)

    func code(_ r: NotarisationRequest, _ v: RequestValidator? = nil) -> ErrorCode? {
        do { try (v ?? validator).check(r); return nil } catch { return error.code }
    }

    @Test mutating func acceptsAWellFormedSignedRequest() {
        #expect(code(request(ids.hash(), inputs: [ids.ref()], references: [ids.ref()])) == nil)
        let windowOnly = request(ids.hash(), inputs: [], window: TimeWindow(from: nil, until: Instant(microsecondsSinceEpoch: 5)))
        #expect(code(windowOnly) == nil)
    }

    @Test mutating func refusesMalformedShapes() {
        let a = ids.ref(), b = ids.ref()
        #expect(code(request(ids.hash(), inputs: [a, b, ids.ref()], references: [ids.ref(), ids.ref()])) == .tooManyStateRefs)
        #expect(code(request(ids.hash(), inputs: [])) == .nothingToNotarise)
        #expect(code(request(ids.hash(), inputs: [a, a])) == .duplicateStateRef)
        #expect(code(request(ids.hash(), inputs: [a], references: [b, b])) == .duplicateStateRef)
        #expect(code(request(ids.hash(), inputs: [a], references: [a])) == .refBothInputAndReference)
    }

    @Test mutating func refusesUnknownPartiesAndKeysThatDoNotMatchTheName() {
        let stranger = SigningKey(seed: [UInt8](repeating: 9, count: 32))!
        #expect(code(request(ids.hash(), inputs: [ids.ref()], by: stranger, name: "O=Mallory")) == .unknownParty)
        // Bob's key under Alice's name.
        #expect(code(request(ids.hash(), inputs: [ids.ref()], by: bob, name: "O=Alice")) == .unknownParty)
    }

    @Test mutating func refusesSignaturesThatDoNotCoverTheRequest() {
        var tampered = request(ids.hash(), inputs: [ids.ref()])
        tampered.inputs = [ids.ref()]
        #expect(code(tampered) == .invalidSignature)
        var truncated = request(ids.hash(), inputs: [ids.ref()])
        truncated.signature.removeLast()
        #expect(code(truncated) == .invalidSignature)
        let otherNotary = SigningKey(seed: [UInt8](repeating: 8, count: 32))!
        let elsewhere = NotarisationRequest.signed(txId: ids.hash(), inputs: [ids.ref()], requesterName: "O=Alice", key: alice,
                                                   notary: otherNotary.publicKey)
        #expect(code(elsewhere) == .invalidSignature)
    }

    @Test mutating func anOpenNotaryStillChecksSignatures() {
        let open = RequestValidator(notary: notaryKey.publicKey, authorisedParties: nil, maxStateRefs: 4)
        let stranger = SigningKey(seed: [UInt8](repeating: 9, count: 32))!
        #expect(code(request(ids.hash(), inputs: [ids.ref()], by: stranger, name: "O=Anyone"), open) == nil)
        var forged = request(ids.hash(), inputs: [ids.ref()], by: stranger, name: "O=Anyone")
        forged.requester.name = "O=Someone Else"
        #expect(code(forged, open) == .invalidSignature)
    }

    @Test mutating func parallelChecksAgreeWithOneByOneChecks() async {
        var requests = [NotarisationRequest]()
        for i in 0..<200 {
            var r = request(ids.hash(), inputs: [ids.ref()])
            if i % 7 == 0 { r.signature[0] ^= 1 }
            if i % 11 == 0 { r.inputs = [] }
            requests.append(r)
        }
        let parallel = await validator.checkAll(requests).map { $0?.code }
        #expect(parallel == requests.map { code($0) })
        #expect(parallel.contains(.invalidSignature) && parallel.contains(nil))
    }
}
