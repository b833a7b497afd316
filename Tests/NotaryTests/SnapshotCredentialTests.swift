import HawserCore
import HawserTestSupport
import Notary
import Testing

/// `GET /v1/snapshot` copies a store that names every transaction: only a holder of the notary's
/// key may ask (found from outside: anyone who reached the port could, though the notary's
/// answers keep the consuming transaction's id private).
struct SnapshotCredentialTests {
    let credential = SnapshotCredential(notaryKey: notaryKey)

    @Test func aCredentialMadeWithTheNotarysKeyPassesWithinTheSkew() {
        let header = credential.header(at: 1_000_000)
        #expect(credential.refusal(header, at: 1_000_000) == nil)
        #expect(credential.refusal(header, at: 1_000_300) == nil)
        #expect(credential.refusal(header, at: 999_700) == nil)
        #expect(credential.refusal(header, at: 1_000_301)?.contains("more than 300 s") == true)
    }

    @Test func anythingElseIsRefused() {
        let stranger = SnapshotCredential(notaryKey: SigningKey(seed: [UInt8](repeating: 0x5A, count: 32))!)
        #expect(credential.refusal(nil, at: 0)?.contains("Authorization: Hawser-Snapshot") == true)
        #expect(credential.refusal(stranger.header(at: 5), at: 5) == "the credential was not made with this notary's key")
        let made = credential.header(at: 5)
        for malformed in ["", "Basic YWRtaW46eA==", "Hawser-Snapshot", "Hawser-Snapshot 5", "Hawser-Snapshot x:00", "Hawser-Snapshot 5:zz",
                          made.replacingOccurrences(of: "Hawser-Snapshot ", with: "Hawser-Snapshot  ")] {
            #expect(credential.refusal(malformed, at: 5)?.contains("is not `Hawser-Snapshot SECONDS:MAC`") == true, "\(malformed)")
        }
        // Another time under the same code, and times far from now (no overflow).
        #expect(credential.refusal(made.replacingOccurrences(of: " 5:", with: " 6:"), at: 5) == "the credential was not made with this notary's key")
        #expect(credential.refusal("Hawser-Snapshot \(Int64.min):00", at: Int64.max)?.contains("more than 300 s") == true)
    }
}
