import Flows
import HawserClient
import HawserCore
import HawserWire

/// How a notary's failures look to flows: the one rule every `FlowNotary` adapter follows, so that
/// a flow meets the embedded notary and a remote one alike (docs/node.md, "The notary").
///
/// - An answer (committed, conflict, time window invalid) that verifies is returned as it is.
/// - An answer that does not verify (another transaction, a broken proof, a signature by a key other
///   than the notary's) proves nothing either way, and the notary may have committed the
///   transaction (something between the node and it changed the answer): it is a
///   `TransientFlowError`, so the flow records nothing, keeps its inputs reserved and asks again
///   as the hospital says (parked after `hospital.maxAttempts`). Failing it freed inputs the
///   ledger had spent (found from outside: every later move of the owner then met a conflict).
/// - A failure that may pass (503: `not_ready`, `timeout`, `shutting_down`, `no_quorum`,
///   `log_diverged`; the notary unreachable or too slow until the client gave up) is a
///   `TransientFlowError`: the hospital runs the flow again later, which sends the same request
///   again. That is safe because the notary is idempotent per transaction id.
/// - A refusal (any other API error, or a response that is not the notary API's) is a
///   `NotaryRefusal`: asking again cannot help until someone changes something (authorises the
///   party on the notary, corrects a URL), so the hospital parks the flow for an operator, who
///   resumes or kills it.
public enum NotaryFailures {
    /// Runs `ask` and returns its answer, throwing what it throws as the flow must see it.
    public static func asking(_ ask: () async throws -> NotarisationAnswer) async throws -> NotarisationAnswer {
        do { return try await ask() } catch { throw flowError(error) }
    }

    /// The error a flow sees for `error`, thrown while asking a notary.
    public static func flowError(_ error: any Error) -> any Error {
        switch error {
        case let invalid as InvalidAnswerError:
            return unverified(invalid.txId, invalid.reason)
        case NotaryClientError.invalidAnswer(let txId, let reason):
            return unverified(txId, reason)
        case let refusal as APIError where refusal.code.isRetryable:
            return TransientFlowError("notary: \(refusal.message) (\(refusal.code.rawValue))")
        case let refusal as APIError:
            return NotaryRefusal(reason: refusal.description)
        case NotaryClientError.unavailable:
            return TransientFlowError("\(error)")
        case NotaryClientError.unexpectedResponse, NotaryClientError.invalidConfiguration:
            return NotaryRefusal(reason: "\(error)")
        default:
            // Cancellation (the node stopping, an operator's kill) and anything else unforeseen
            // pass unchanged: the engine handles the first and parks the flow for the rest.
            return error
        }
    }

    private static func unverified(_ txId: SecureHash?, _ reason: String) -> TransientFlowError {
        TransientFlowError("the notary's answer\(txId.map { " for transaction \($0.hex)" } ?? "") is invalid and was not accepted: "
                           + "\(reason); the transaction may be committed, so the flow keeps its inputs and asks again")
    }
}

/// The notary refused a request, or answered with something that is not its API. Sending the same
/// request again cannot help until something changes, so the flow is parked for an operator.
public struct NotaryRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { "the notary refused the request: \(reason)" }
}
