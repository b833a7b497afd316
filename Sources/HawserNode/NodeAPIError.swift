import Foundation
import Hummingbird
import NIOCore

/// Every error the node's RPC API returns: a stable code, the HTTP status that fits, a sentence.
/// The body has the notary API's shape: `{"error": {"code": ..., "message": ...}}`.
public struct NodeAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: NodeErrorCode
    public var message: String

    public init(_ code: NodeErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The node API's stable error codes; docs/node-openapi.json lists exactly these (a test checks).
public enum NodeErrorCode: String, Sendable, CaseIterable, Codable {
    case malformedRequest = "malformed_request"
    case unknownFlow = "unknown_flow"
    case invalidFlowArguments = "invalid_flow_arguments"
    case unknownArgument = "unknown_argument"
    case unknownParty = "unknown_party"
    case invalidClientRequestId = "invalid_client_request_id"
    case clientRequestIdReused = "client_request_id_reused"
    case invalidQuery = "invalid_query"
    case unauthenticated = "unauthenticated"
    case forbidden = "forbidden"
    case flowNotFound = "flow_not_found"
    case notFound = "not_found"
    case methodNotAllowed = "method_not_allowed"
    case flowFinished = "flow_finished"
    case flowNotHospitalised = "flow_not_hospitalised"
    case bodyTooLarge = "body_too_large"
    case unsupportedMediaType = "unsupported_media_type"
    case draining = "draining"
    case notReady = "not_ready"
    case internalError = "internal_error"

    public var httpStatus: Int {
        switch self {
        case .malformedRequest, .unknownFlow, .invalidFlowArguments, .unknownArgument, .unknownParty, .invalidClientRequestId,
             .invalidQuery: 400
        case .unauthenticated: 401
        case .forbidden: 403
        case .flowNotFound, .notFound: 404
        case .methodNotAllowed: 405
        case .flowFinished, .flowNotHospitalised, .clientRequestIdReused: 409
        case .bodyTooLarge: 413
        case .unsupportedMediaType: 415
        case .internalError: 500
        case .draining, .notReady: 503
        }
    }
}

struct NodeErrorBody: Codable, Sendable {
    struct Detail: Codable, Sendable {
        var code: String
        var message: String
    }
    var error: Detail
}

extension NodeAPIError: HTTPResponseError {
    public var status: HTTPResponse.Status { .init(code: code.httpStatus) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if code == .unauthenticated { headers[.wwwAuthenticate] = "Basic realm=\"hawser\"" }
        let body = try JSONEncoder().encode(NodeErrorBody(error: .init(code: code.rawValue, message: message)))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Turns every error into a node API error body, without leaking unexpected errors' details.
struct NodeErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let knownPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as NodeAPIError {
            throw error
        } catch is NIOTooManyBytesError {
            throw NodeAPIError(.bodyTooLarge, "the body is larger than this node accepts (maxBodyBytes)")
        } catch let error as HTTPError where error.status == .notFound {
            if knownPaths.contains(where: { APIErrorMiddleware<Context>.matches(request.uri.path, $0) }) {
                throw NodeAPIError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path)")
            }
            throw NodeAPIError(.notFound, "no such endpoint: \(request.uri.path)")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            throw NodeAPIError(.internalError, "the node failed to handle the request; it has been logged")
        }
    }
}
