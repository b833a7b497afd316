import Foundation
import HawserCore
import HawserWire
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// One route of an HTTP API: its method, its path (`{name}` segments match any one segment) and
/// the query parameters it takes. Each API declares its routes once, in a table; the edge refuses
/// a query parameter its route does not declare, and the OpenAPI document tests compare the table
/// with the document.
struct APIRoute: Sendable {
    let method: HTTPRequest.Method
    let path: String
    let query: Set<String>
    /// The process's own state (draining), which a standby serves too (`StandbyGate`).
    let processWide: Bool

    init(_ method: HTTPRequest.Method, _ path: String, query: Set<String> = [], processWide: Bool = false) {
        self.method = method
        self.path = path
        self.query = query
        self.processWide = processWide
    }

    func matches(_ requestPath: String) -> Bool {
        // Empty segments are skipped, as Hummingbird's router skips them.
        let a = requestPath.split(separator: "/"), b = path.split(separator: "/")
        return a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || $1.hasPrefix("{") }
    }
}

/// The failures every route of an API can meet at its edge, before or around its handler.
enum EdgeFailure {
    case notFound, methodNotAllowed, bodyTooLarge, overloaded, malformedRequest, unknownField, unknownQueryParameter,
         repeatedQueryParameter, unsupportedTransferCoding, unsupportedContentCoding, internalError
}

/// An API's error type, as the edge needs it: its own code for each `EdgeFailure`.
protocol EdgeError: HTTPResponseError {
    init(edge failure: EdgeFailure, _ message: String)
}

/// Turns everything that goes wrong in a request into the API's error body: unknown routes (404,
/// or 405 with `Allow`), query parameters the route does not take, oversized or truncated
/// bodies, unknown JSON fields, and unexpected errors, which become `internal_error` without
/// leaking their details. A request's body is read here, whole, and the request runs only while
/// its bytes fit in the server's `BodyBudget` (else it is answered `overloaded`).
struct EdgeMiddleware<Context: RequestContext, Failure: EdgeError>: RouterMiddleware {
    let routes: [APIRoute]
    /// "notary" or "node", for messages.
    let server: String
    /// The option that limits bodies and its value, for the `body_too_large` message.
    let bodyLimit: (option: String, bytes: Int)
    /// The bytes of bodies the server takes at once, and the option that sets it.
    let inFlight: (option: String, budget: BodyBudget)
    /// The bytes of bodies still arriving, at most `arrivingFactor` times `inFlight`'s: a body
    /// still arriving holds nothing of `inFlight` (a client sending slowly cannot keep others'
    /// bodies out of it), but its bytes are held all the same. Unbounded, 80 connections each
    /// sending most of 8 MB and never finishing took 700 MB (found from outside).
    let arriving: BodyBudget
    static var arrivingFactor: Int { 4 }

    init(routes: [APIRoute], server: String, bodyLimit: (option: String, bytes: Int), inFlight: (option: String, budget: BodyBudget)) {
        self.routes = routes
        self.server = server
        self.bodyLimit = bodyLimit
        self.inFlight = inFlight
        arriving = BodyBudget(limit: Self.arrivingFactor * inFlight.budget.limit)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        // A bad escape in the query was decoded to something (`?type=%zz` listed no states)
        // instead of refused, as one in the path is.
        if let query = request.uri.query, query.contains("%"),
           let bad = query.split(separator: "&").first(where: { String($0).removingPercentEncoding == nil }) {
            throw Failure(edge: .malformedRequest, "the query's `\(bad.prefix(100))` has a `%` not followed by two hexadecimal digits, "
                + "or escapes that are not UTF-8: encode a `%` as `%25`")
        }
        // Nothing stored holds a NUL, and PostgreSQL's text cannot: looked up there it failed the
        // query, answered 503 `database_unavailable`, which clients retry for ever (found from outside).
        if path.contains("%00") || request.uri.query?.contains("%00") == true {
            throw Failure(edge: .malformedRequest, "the path or query holds a NUL character (`%00`), which nothing the server holds has")
        }
        // Most requests have no query: they skip the route lookup.
        let served = request.uri.query?.isEmpty == false ? routes.filter { $0.method == request.method && $0.matches(path) } : []
        if !served.isEmpty {
            let known = served.reduce(into: Set<String>()) { $0.formUnion($1.query) }
            let names = request.uri.queryParameters.map { String($0.key) }.sorted()
            if let unknown = names.first(where: { !known.contains($0) }) {
                let takes = known.isEmpty ? "takes no query parameters" : "takes only \(known.sorted().joined(separator: ", "))"
                throw Failure(edge: .unknownQueryParameter, "unknown query parameter `\(unknown.prefix(100))`: \(request.method) \(path) \(takes)")
            }
            // A handler reads one of the values; which one would be a guess.
            if let repeated = zip(names, names.dropFirst()).first(where: { $0 == $1 })?.0 {
                throw Failure(edge: .repeatedQueryParameter, "the query parameter `\(repeated)` is given more than once: give it once")
            }
        }
        // The HTTP/1.1 parser frames a body by its last coding, `chunked`, and passes the others
        // through: a gzip body would be read as JSON. RFC 9112 answers a coding it does not
        // implement with 501; the body is still framed, so the connection stays usable.
        if let coding = Self.coding(in: request.headers[values: .transferEncoding], other: "chunked") {
            throw Failure(edge: .unsupportedTransferCoding, "the transfer coding `\(coding.prefix(40))` is not supported: send the body "
                + "with Content-Length or Transfer-Encoding: chunked alone")
        }
        // A compressed body was read as it came: gzip'd JSON answered "not valid JSON" (found
        // from outside). RFC 9110 answers a content coding the server does not take with 415,
        // naming the ones it takes (RFC 7694) in Accept-Encoding.
        if hasBody(request), let coding = Self.coding(in: request.headers[values: .contentEncoding], other: "identity") {
            var response = try Failure(edge: .unsupportedContentCoding, "the content coding `\(coding.prefix(40))` is not supported: "
                + "send the body uncompressed, without Content-Encoding").response(from: request, context: context)
            response.headers[.acceptEncoding] = "identity"
            return response
        }
        do {
            // The body is read whole here, and its bytes held until the answer, so that what a
            // server decodes at once is bounded; a body still arriving holds nothing of it (a
            // client sending slowly cannot hold the budget) but is bounded apart (`arriving`),
            // and the handlers' `collect` finds it read.
            var request = request
            let body = hasBody(request) ? try await receive(request.body) : nil
            let bytes = body?.readableBytes ?? 0
            guard inFlight.budget.take(bytes) else {
                throw Failure(edge: .overloaded, "this \(server) is decoding as many request bodies at once as it may (\(inFlight.option), "
                    + "\(inFlight.budget.limit) bytes); send the request again shortly")
            }
            defer { inFlight.budget.give(bytes) }
            if let body { request.body = RequestBody(buffer: body) }
            return try await next(request, context)
        } catch let error as Failure {
            throw error
        } catch is NIOTooManyBytesError {
            throw Failure(edge: .bodyTooLarge, "the body is larger than this \(server) accepts (\(bodyLimit.option), \(bodyLimit.bytes) bytes)")
        } catch let error as HTTPParserError {
            throw Failure(edge: .malformedRequest, error == .invalidEOFState
                ? "the request body ended before the length its headers announced"
                : "the request is not valid HTTP/1.1 (\(error))")
        } catch let error as UnknownFieldError {
            throw Failure(edge: .unknownField, "the body has a field this \(server) does not know: `\(error.path.prefix(200))`")
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = Set(routes.filter { $0.matches(path) }.map(\.method.rawValue)).sorted()
            // The method allowed, the router still found nothing (`/v1/flows/by-client-id/`, with
            // its key empty, looks like `/v1/flows/{id}` here): there is no such resource.
            guard !allowed.isEmpty, !allowed.contains(request.method.rawValue) else {
                throw Failure(edge: .notFound, "no such endpoint: \(path.prefix(200))")
            }
            // RFC 9110: a 405 names the methods the resource supports.
            var response = try Failure(edge: .methodNotAllowed, "\(request.method) is not allowed on \(path.prefix(200)); use \(allowed.joined(separator: " or "))")
                .response(from: request, context: context)
            response.headers[.allow] = allowed.joined(separator: ", ")
            return response
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            throw Failure(edge: .internalError, "the \(server) failed to handle the request; it has been logged")
        }
    }

    /// The body, whole, its bytes held in `arriving` as they come and given back once it is whole.
    private func receive(_ body: RequestBody) async throws -> ByteBuffer {
        var whole = ByteBuffer(), held = 0
        defer { arriving.give(held) }
        for try await var chunk in body {
            guard whole.readableBytes + chunk.readableBytes <= bodyLimit.bytes else { throw NIOTooManyBytesError(maxBytes: bodyLimit.bytes) }
            guard arriving.take(chunk.readableBytes) else {
                throw Failure(edge: .overloaded, "this \(server) is receiving as many bytes of request bodies at once as it may "
                    + "(\(Self.arrivingFactor) times \(inFlight.option), \(arriving.limit) bytes); send the request again shortly")
            }
            held += chunk.readableBytes
            whole.writeBuffer(&chunk)
        }
        return whole
    }

    /// The first coding a coding header's values (comma-separated lists) name other than `taken`.
    private static func coding(in values: [String], other taken: String) -> String? {
        values.lazy.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.lowercased() != taken }
    }

    /// Whether `request` brings a body (HTTP/1.1: a `Content-Length` above 0, or a transfer coding).
    private func hasBody(_ request: Request) -> Bool {
        if let length = request.headers[.contentLength] { return length != "0" }
        return request.headers[.transferEncoding] != nil
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with the connection cap and the read deadlines of `settings` (see `ListenerCap`
    /// and `ConnectionDeadlines`).
    static func http1(_ settings: HTTPSettings, cap: ListenerCap, logger: Logger) -> HTTPServerBuilder {
        .http1(configuration: .init(additionalChannelHandlers: [ConnectionCapHandler(cap: cap),
                                                                ConnectionDeadlineHandler(limits: settings.limits, logger: logger)]))
    }
}

extension JSONDecoder {
    /// A decoder for request bodies: request types refuse fields they do not have.
    static func forRequests() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.userInfo[.refusesUnknownFields] = true
        return decoder
    }

    /// A request body as `T`, read strictly first (`JSONValue(parsing:)`): Foundation's reader
    /// takes the first of a member named twice, a byte-order mark and text after the value, and
    /// a body that means two things to two readers must mean nothing. Throws `JSONParseError`
    /// (with the byte where reading stopped), `UnknownFieldError` or `DecodingError`.
    static func decodeRequest<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        _ = try JSONValue(parsing: bytes)
        return try forRequests().decode(T.self, from: Data(bytes))
    }
}
