import HawserCore

/// Errors of `NotaryClient` other than the API's own refusals (those are thrown as `APIError`).
public enum NotaryClientError: Error, Sendable, CustomStringConvertible {
    /// An answer failed verification (wrong transaction id, malformed proof, bad signature, or an
    /// undecodable body). It is never returned as an answer.
    case invalidAnswer(txId: SecureHash?, reason: String)
    /// Every attempt failed with a retryable error, or the deadline passed; `lastError` is the last one.
    case unavailable(attempts: Int, lastError: any Error)
    /// The server answered with a status and body that are not part of the API.
    case unexpectedResponse(status: Int, body: String)
    /// The client was set up wrongly (no or malformed base URLs).
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .invalidAnswer(let txId, let reason):
            "invalid answer\(txId.map { " for \($0.hex)" } ?? ""): \(reason)"
        case .unavailable(let attempts, let lastError):
            "notary unavailable after \(attempts) attempt\(attempts == 1 ? "" : "s"); last error: \(errorText(lastError))"
        case .unexpectedResponse(let status, let body):
            "unexpected HTTP \(status) response: \(body)"
        case .invalidConfiguration(let problem):
            "invalid client configuration: \(problem)"
        }
    }
}
