import FlowNotaries
import Flows
import HawserClient
import HawserCore
import HawserWire
import Testing

/// The one rule by which notary failures reach flows, checked through the hospital's treatment:
/// what may pass (an invalid answer too) is retried, a refusal is parked for an operator.
@Suite(.timeLimit(.minutes(10))) struct NotaryFailuresTests {
    let hospital = HospitalPolicy()

    func treatment(_ error: any Error) -> HospitalPolicy.Treatment {
        hospital.treat(NotaryFailures.flowError(error), attempts: 0)
    }

    @Test func whatMayPassIsRetried() {
        for code in ErrorCode.allCases where code.httpStatus == 503 {
            #expect(treatment(APIError(code, "busy")) == .retry(after: hospital.initialDelay), "\(code)")
        }
        let unreachable = NotaryClientError.unavailable(attempts: 8, lastError: NotaryClientError.unexpectedResponse(status: 503, body: ""))
        #expect(treatment(unreachable) == .retry(after: hospital.initialDelay))
    }

    @Test func aRefusalIsParkedForAnOperator() {
        for code in ErrorCode.allCases where code.httpStatus != 503 {
            guard case .park(let reason) = treatment(APIError(code, "no")) else {
                Issue.record("\(code) is not parked")
                continue
            }
            #expect(reason.contains("the notary refused the request: \(code.rawValue)"), "\(reason)")
        }
        guard case .park = treatment(NotaryClientError.unexpectedResponse(status: 404, body: "not a notary")) else {
            Issue.record("a response that is not the notary API's is not parked")
            return
        }
    }

    /// An answer that does not verify proves nothing, and the notary may have committed: the flow
    /// keeps its inputs and asks again later. Before, it failed, freeing inputs the ledger had
    /// spent (found from outside, with a proxy that changed one byte of the notary's signature).
    @Test func anInvalidAnswerIsAskedAgain() {
        let txId = SecureHash.sha256([1])
        for error: any Error in [InvalidAnswerError(txId: txId, reason: "bad signature"),
                                 NotaryClientError.invalidAnswer(txId: txId, reason: "bad signature")] {
            #expect(treatment(error) == .retry(after: hospital.initialDelay), "\(error)")
            #expect("\(NotaryFailures.flowError(error))".contains(
                "the notary's answer for transaction \(txId.hex) is invalid and was not accepted: bad signature; the transaction may be committed"))
        }
    }

    @Test func cancellationPassesUnchanged() {
        #expect(NotaryFailures.flowError(CancellationError()) is CancellationError)
    }
}
