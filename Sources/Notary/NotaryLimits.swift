import HawserCore

/// The notary's tunable limits. Every value is validated at start-up (`problems`).
public struct NotaryLimits: Sendable, Equatable {
    /// Most inputs plus references one request may name.
    public var maxStateRefs = NotarisationRequest.defaultMaxStateRefs
    /// Most requests written into one log entry (group commit).
    public var maxRequestsPerLogEntry = 2_000
    /// Most log entries the replica applies in one database transaction.
    public var maxEntriesPerApply = 64
    /// How long a request waits for its outcome before the caller hears `timeout` (it may still
    /// be decided later; asking again with the same transaction id is always safe).
    public var requestTimeout: Duration = .seconds(30)

    public init() {}

    /// One sentence per invalid value; empty when all are valid.
    public var problems: [String] {
        var out = [String]()
        if maxStateRefs < 1 { out.append("limits.maxStateRefs must be at least 1") }
        if maxRequestsPerLogEntry < 1 { out.append("limits.maxRequestsPerLogEntry must be at least 1") }
        if maxEntriesPerApply < 1 { out.append("limits.maxEntriesPerApply must be at least 1") }
        if requestTimeout <= .zero || requestTimeout > .seconds(3_600) { out.append("limits.requestTimeoutMillis must be 1...3600000 (an hour)") }
        return out
    }
}
