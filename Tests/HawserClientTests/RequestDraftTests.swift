import Foundation
import HawserClient
import HawserCore
import HawserWire
import Testing

@Suite(.timeLimit(.minutes(10))) struct RequestDraftTests {
    let party = SigningKey()
    let notary = SigningKey()

    @Test func signedJSONRoundTrips() throws {
        let input = StateRef(txId: .random(), index: 0), reference = StateRef(txId: .random(), index: 7)
        let txId = SecureHash.random()
        let draft = try RequestDraft(txIdHex: txId.hex, inputs: [input.description], references: [reference.description],
                                     from: "2026-11-22T09:30:00Z", until: "2026-11-22T10:30:00.5+01:00")
        let request = draft.signed(requesterName: "Alice", key: party, notary: notary.publicKey)
        let json = try JSONDecoder().decode(NotarisationRequestJSON.self, from: Data(request.jsonText.utf8))
        let decoded = try json.decoded()
        #expect(decoded == request)
        #expect(decoded.txId == txId)
        #expect(decoded.inputs == [input] && decoded.references == [reference])
        #expect(decoded.timeWindow?.from == Instant(rfc3339: "2026-11-22T09:30:00Z"))
        #expect(decoded.timeWindow?.until == Instant(rfc3339: "2026-11-22T09:30:00.5Z"))
        #expect(decoded.requester == Party(name: "Alice", publicKey: party.publicKey))
        #expect(party.publicKey.isValidSignature(decoded.signature, for: decoded.signingPayload(notary: notary.publicKey)))
        #expect(!party.publicKey.isValidSignature(decoded.signature, for: decoded.signingPayload(notary: SigningKey().publicKey)))
    }

    @Test func randomIdWhenOmitted() throws {
        let a = try RequestDraft(txIdHex: nil, inputs: [])
        let b = try RequestDraft(txIdHex: nil, inputs: [])
        #expect(a.txId != b.txId)
        #expect(a.timeWindow == nil)
        let json = a.signed(requesterName: "Bob", key: party, notary: notary.publicKey).jsonText
        #expect(!json.contains("\\/"), "base64 slashes are not escaped")
    }

    @Test func badTextIsRefused() {
        #expect(throws: APIError(.invalidTransactionId, "the transaction id must be 64 hexadecimal digits, not `xyz`")) {
            try RequestDraft(txIdHex: "xyz", inputs: [])
        }
        #expect { try RequestDraft(txIdHex: nil, inputs: ["nope"]) } throws: { ($0 as? APIError)?.code == .invalidStateRef }
        #expect { try RequestDraft(txIdHex: nil, inputs: [], until: "yesterday") } throws: { ($0 as? APIError)?.code == .invalidTimeWindow }
        #expect { try RequestDraft(txIdHex: nil, inputs: [], from: "2026-11-22T10:00:00Z", until: "2026-11-22T09:00:00Z") } throws: {
            ($0 as? APIError)?.code == .invalidTimeWindow
        }
    }
}
