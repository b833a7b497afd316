import Foundation
import HawserCore
import HawserWire
import Hummingbird
import NIOCore
import SwiftProtobuf

/// The API's two body encodings: JSON for people, protobuf for the hot path.
enum WireFormat {
    case json, protobuf

    static let protobufType = "application/x-protobuf"

    var contentType: String { self == .json ? "application/json" : Self.protobufType }

    /// A POST's body format, from its Content-Type; anything but JSON (in UTF-8) or protobuf is refused.
    static func ofBody(_ request: Request) throws -> WireFormat {
        let (type, foreignCharset) = MediaTypes.content(request.headers[.contentType])
        switch type {
        case "application/json" where foreignCharset == nil: return .json
        case "application/json":
            throw APIError(.unsupportedMediaType, "send the JSON body in UTF-8, not `\(foreignCharset!.prefix(40))`")
        case protobufType: return .protobuf
        default:
            throw APIError(.unsupportedMediaType, "send the body as application/json or \(protobufType), not `\(type.isEmpty ? "(none)" : type)`")
        }
    }

    /// The format a response should use: the body's format for a POST, else protobuf when the
    /// Accept header prefers it to JSON.
    static func forResponse(to request: Request) -> WireFormat {
        if request.method == .post, let format = try? ofBody(request) { return format }
        return MediaTypes.accept(request.headers[.accept], prefers: protobufType, to: "application/json") ? .protobuf : .json
    }

    func response<J: Encodable, P: SwiftProtobuf.Message>(status: HTTPResponse.Status = .ok, json: @autoclosure () -> J,
                                                          proto: @autoclosure () -> P) -> Response {
        let bytes: [UInt8]
        switch self {
        case .json: bytes = Array(try! Self.encoder.encode(json()))
        case .protobuf: bytes = try! proto().serializedBytes()
        }
        return Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func decode<J: Decodable, P: SwiftProtobuf.Message>(_ body: ByteBuffer, json: J.Type, proto: P.Type) throws -> Either<J, P> {
        switch self {
        case .json: return .json(try Self.json.decodeJSON(body, J.self))
        case .protobuf:
            do { return .proto(try P(serializedBytes: Data(buffer: body))) } catch { throw malformed(J.self, Self.summary(of: error)) }
        }
    }

    /// A JSON body as `J`.
    func decodeJSON<J: Decodable>(_ body: ByteBuffer, _ type: J.Type) throws -> J {
        do {
            return try JSONDecoder.decodeRequest(J.self, from: Array(buffer: body))
        } catch let error as UnknownFieldError {
            throw error  // `EdgeMiddleware` answers it
        } catch {
            throw malformed(J.self, Self.summary(of: error))
        }
    }

    /// The refusal of a body that is not a valid `J` (a JSON form's name, as the API calls it).
    func malformed<J>(_ type: J.Type, _ why: String) -> APIError {
        APIError(.malformedRequest, "the body is not a valid \(contentType) \(String(describing: J.self).replacingOccurrences(of: "JSON", with: "")): \(why)")
    }

    enum Either<J, P> {
        case json(J)
        case proto(P)
    }

    /// Every JSON body the APIs write: sorted keys, so that a client sees one order (a
    /// dictionary-ordered encoder gave the keys of one error body in either order, request by
    /// request), and URLs unescaped.
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    private static func summary(of error: any Error) -> String {
        switch error {
        case let error as JSONParseError: "not valid JSON: \(error)"
        case DecodingError.typeMismatch(_, let c) where c.codingPath.isEmpty: "the body must be a JSON object"
        case DecodingError.keyNotFound(let key, let c) where c.codingPath.isEmpty: "missing field `\(key.stringValue)`"
        case let error as DecodingError: error.plainDescription
        default: "undecodable"
        }
    }
}

extension APIError: ResponseGenerator {}
extension APIError: HTTPResponseError {
    public var status: HTTPResponse.Status { .init(code: code.httpStatus) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = WireFormat.forResponse(to: request).response(status: status, json: ErrorBodyJSON(self), proto: proto)
        if code == .standby || code == .overloaded || code == .databaseUnavailable { response.headers[.retryAfter] = "1" }
        return response
    }
}

extension APIError: EdgeError {
    init(edge failure: EdgeFailure, _ message: String) {
        switch failure {
        case .notFound: self.init(.notFound, message)
        case .methodNotAllowed: self.init(.methodNotAllowed, message)
        case .bodyTooLarge: self.init(.bodyTooLarge, message)
        case .overloaded: self.init(.overloaded, message)
        case .malformedRequest: self.init(.malformedRequest, message)
        case .unknownField: self.init(.unknownField, message)
        case .unknownQueryParameter: self.init(.unknownQueryParameter, message)
        // No notary route takes a query parameter: any is unknown before it can be repeated.
        case .repeatedQueryParameter: self.init(.malformedRequest, message)
        case .unsupportedTransferCoding: self.init(.unsupportedTransferCoding, message)
        case .unsupportedContentCoding: self.init(.unsupportedMediaType, message)
        case .internalError: self.init(.internalError, message)
        }
    }
}
