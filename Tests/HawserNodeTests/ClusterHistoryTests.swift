import HawserCore
import Sim
import Testing

/// `ClusterHistory` writes what clients heard as docs/history.md says, so the fault runs are
/// judged by the same `HistoryChecker` as `hawser check history`.
@Suite(.timeLimit(.minutes(10))) struct ClusterHistoryTests {
    static let requester = Party(name: "O=Alice", publicKey: SigningKey().publicKey)
    static let state = StateRef(txId: SecureHash.sha256([1]), index: 0)

    static func request(_ seed: UInt8, _ inputs: [StateRef]) -> NotarisationRequest {
        NotarisationRequest(txId: SecureHash.sha256([seed]), inputs: inputs, requester: requester, signature: [])
    }

    @Test func twoCommittedSpendsOfOneStateAreFound() throws {
        let history = ClusterHistory()
        let a = Self.request(2, [Self.state]), b = Self.request(3, [Self.state])
        history.record(a, .committed)
        history.record(b, .conflict([Conflict(ref: Self.state, kind: .input, consumingTxIdHash: SecureHash.sha256(a.txId.bytes))]))
        #expect(try history.violations() == [])
        history.record(b, .committed)
        #expect(try history.violations().map(\.rule).sorted() == ["changed_outcome", "double_spend"])
    }
}
