import Flows
import Foundation
import Hummingbird
import NIOCore

/// Every error the node's RPC API returns: a stable code, the HTTP status that fits, a sentence.
/// The body has the notary API's shape: `{"error": {"code": ..., "message": ...}}`.
public struct NodeAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: NodeErrorCode
    public var message: String
    /// Seconds after which to try again, sent as `Retry-After` (with `too_many_attempts`, `standby`,
    /// `database_unavailable`, `overloaded`).
    public var retryAfter: Int?
    /// With `standby`: the active node's first advertised URL, when one is active.
    public var active: String?

    public init(_ code: NodeErrorCode, _ message: String, retryAfter: Int? = nil, active: String? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
        self.active = active
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The answer to a request about flow `id` that only the process serving its `partition`
    /// serves: `standby`, naming that process (`owner`, its first advertised URL) when one does.
    static func partitionElsewhere(_ id: FlowID, _ partition: Int, owner: String?) -> NodeAPIError {
        let message = owner.map { "flow \(id) is in partition \(partition), which the process at \($0) runs" }
            ?? "flow \(id) is in partition \(partition), which no process runs now (it is changing hands); try again shortly"
        return NodeAPIError(.standby, message, retryAfter: 1, active: owner)
    }

    /// The answer to a request whose serving work stopped under it (a hot-hot partition released
    /// mid-request, or the process stopping): nothing the client sent was wrong, and the same
    /// request may be sent again (docs/node.md "Hot-hot").
    static let workStopped = NodeAPIError(.standby, "the work serving this request stopped before it was answered (a partition moved, or "
                                          + "the node is stopping): send the same request again (a start with its client request id "
                                          + "is safe to repeat)", retryAfter: 1)
}

/// The node API's stable error codes; docs/node-openapi.json lists exactly these (a test checks).
public enum NodeErrorCode: String, Sendable, CaseIterable, Codable {
    case malformedRequest = "malformed_request"
    case unknownField = "unknown_field"
    case unknownQueryParameter = "unknown_query_parameter"
    case unknownFlow = "unknown_flow"
    case invalidFlowArguments = "invalid_flow_arguments"
    case unknownArgument = "unknown_argument"
    case unknownParty = "unknown_party"
    case invalidClientRequestId = "invalid_client_request_id"
    case clientRequestIdReused = "client_request_id_reused"
    case invalidQuery = "invalid_query"
    case invalidLastEventId = "invalid_last_event_id"
    case unauthenticated = "unauthenticated"
    case forbidden = "forbidden"
    case tooManyAttempts = "too_many_attempts"
    case flowNotFound = "flow_not_found"
    case notFound = "not_found"
    case methodNotAllowed = "method_not_allowed"
    case flowFinished = "flow_finished"
    case flowNotHospitalised = "flow_not_hospitalised"
    case flowNotarising = "flow_notarising"
    case bodyTooLarge = "body_too_large"
    case unsupportedMediaType = "unsupported_media_type"
    case unsupportedTransferCoding = "unsupported_transfer_coding"
    case draining = "draining"
    case notReady = "not_ready"
    case standby = "standby"
    case overloaded = "overloaded"
    case databaseUnavailable = "database_unavailable"
    case internalError = "internal_error"

    public var httpStatus: Int {
        switch self {
        case .malformedRequest, .unknownField, .unknownQueryParameter, .unknownFlow, .invalidFlowArguments, .unknownArgument,
             .unknownParty, .invalidClientRequestId, .invalidQuery, .invalidLastEventId: 400
        case .unauthenticated: 401
        case .forbidden: 403
        case .flowNotFound, .notFound: 404
        case .methodNotAllowed: 405
        case .flowFinished, .flowNotHospitalised, .flowNotarising, .clientRequestIdReused: 409
        case .bodyTooLarge: 413
        case .unsupportedMediaType: 415
        case .tooManyAttempts: 429
        case .internalError: 500
        case .unsupportedTransferCoding: 501
        case .draining, .notReady, .standby, .overloaded, .databaseUnavailable: 503
        }
    }
}

struct NodeErrorBody: Codable, Sendable {
    struct Detail: Codable, Sendable {
        var code: String
        var message: String
        /// The active node's URL (`standby` only).
        var active: String?
    }
    var error: Detail
}

extension NodeAPIError: HTTPResponseError {
    public var status: HTTPResponse.Status { .init(code: code.httpStatus) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if code == .unauthenticated { headers[.wwwAuthenticate] = "Basic realm=\"hawser\"" }
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        let body = try WireFormat.encoder.encode(NodeErrorBody(error: .init(code: code.rawValue, message: message, active: active)))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension NodeAPIError: EdgeError {
    init(edge failure: EdgeFailure, _ message: String) {
        switch failure {
        case .notFound: self.init(.notFound, message)
        case .methodNotAllowed: self.init(.methodNotAllowed, message)
        case .bodyTooLarge: self.init(.bodyTooLarge, message)
        case .overloaded: self.init(.overloaded, message, retryAfter: 1)
        case .malformedRequest: self.init(.malformedRequest, message)
        case .unknownField: self.init(.unknownField, message)
        case .unknownQueryParameter: self.init(.unknownQueryParameter, message)
        case .repeatedQueryParameter: self.init(.invalidQuery, message)
        case .unsupportedTransferCoding: self.init(.unsupportedTransferCoding, message)
        case .unsupportedContentCoding: self.init(.unsupportedMediaType, message)
        case .internalError: self.init(.internalError, message)
        }
    }
}
