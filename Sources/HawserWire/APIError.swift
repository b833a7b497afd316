/// Every error the HTTP API returns: a stable code, the HTTP status that fits, a sentence for people.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// With `standby`: the active process's first advertised base URL, when one is active.
    public var active: String?

    public init(_ code: ErrorCode, _ message: String, active: String? = nil) {
        self.code = code
        self.message = message
        self.active = active
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The stable, machine-readable error codes. docs/openapi.json lists exactly these (a test checks).
public enum ErrorCode: String, Sendable, CaseIterable, Codable {
    /// The body does not decode as the declared content type, or a required field is missing.
    case malformedRequest = "malformed_request"
    /// A JSON body has a field the request type does not have; the message names it.
    case unknownField = "unknown_field"
    /// The route does not take a query parameter the request has; the message names it.
    case unknownQueryParameter = "unknown_query_parameter"
    case invalidTransactionId = "invalid_transaction_id"
    case invalidStateRef = "invalid_state_ref"
    case invalidTimeWindow = "invalid_time_window"
    case invalidPublicKey = "invalid_public_key"
    case duplicateStateRef = "duplicate_state_ref"
    case refBothInputAndReference = "ref_both_input_and_reference"
    case tooManyStateRefs = "too_many_state_refs"
    case nothingToNotarise = "nothing_to_notarise"
    case batchTooLarge = "batch_too_large"
    case bodyTooLarge = "body_too_large"
    case unknownParty = "unknown_party"
    case invalidSignature = "invalid_signature"
    /// A route for the notary's own replicas (`GET /v1/snapshot`) asked without a valid credential.
    case unauthorized = "unauthorized"
    case unsupportedMediaType = "unsupported_media_type"
    /// The body was sent with a transfer coding other than `chunked` (gzip, say).
    case unsupportedTransferCoding = "unsupported_transfer_coding"
    case transactionNotFound = "transaction_not_found"
    /// A replica was asked for its chain at a position it has not applied or no longer remembers.
    case positionNotRemembered = "position_not_remembered"
    /// This notary has no store file to copy (`GET /v1/snapshot` of a notary on PostgreSQL).
    case noSnapshot = "no_snapshot"
    case notFound = "not_found"
    case methodNotAllowed = "method_not_allowed"
    case notReady = "not_ready"
    /// This replica found the log broken or outvoted (it stopped signing); another replica may answer.
    case logDiverged = "log_diverged"
    /// Fewer than a majority of the notary's replicas are ready: nothing can be confirmed.
    case noQuorum = "no_quorum"
    case timeout = "timeout"
    case shuttingDown = "shutting_down"
    /// A hot-warm standby (or a process taking over): ask the active one, named in `active`.
    case standby = "standby"
    /// The notary is taking as many request bodies at once as `limits.maxBodyBytesInFlight` allows.
    case overloaded = "overloaded"
    /// The notary's database (PostgreSQL) cannot be reached now: nothing the client sent was wrong.
    case databaseUnavailable = "database_unavailable"
    case internalError = "internal_error"

    public var httpStatus: Int {
        switch self {
        case .malformedRequest, .unknownField, .unknownQueryParameter, .invalidTransactionId, .invalidStateRef,
             .invalidTimeWindow, .invalidPublicKey, .duplicateStateRef, .refBothInputAndReference, .tooManyStateRefs,
             .nothingToNotarise:
            400
        case .unauthorized: 401
        case .unknownParty, .invalidSignature: 403
        case .transactionNotFound, .notFound, .positionNotRemembered, .noSnapshot: 404
        case .methodNotAllowed: 405
        case .batchTooLarge, .bodyTooLarge: 413
        case .unsupportedMediaType: 415
        case .internalError: 500
        case .unsupportedTransferCoding: 501
        case .notReady, .timeout, .shuttingDown, .logDiverged, .noQuorum, .standby, .overloaded, .databaseUnavailable: 503
        }
    }

    /// Whether the same request may simply be sent again later (it changes nothing twice).
    public var isRetryable: Bool { httpStatus == 503 }
}
