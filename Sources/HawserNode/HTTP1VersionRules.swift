import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// What HTTP/1.x asks of a server (RFC 9112 §9.3, RFC 9110 §10.1.1) that neither NIO's codec nor
/// Hummingbird does. It sits between the codec and the conversion to HTTP types, the one place
/// where a request's version is still known.
///
/// - A request that ends the connection (HTTP/1.0, a `close` token anywhere in `Connection`, a
///   `CONNECT`) goes on with `Connection: close` alone, the one form Hummingbird and `ConnectionDeadlines`
///   recognise. HTTP/1.0's `keep-alive` extension is not offered: one request per connection.
/// - An HTTP/1.0 request is answered as HTTP/1.0, so that a body of unknown length ends with
///   the connection rather than in chunks, which such a client cannot read.
/// - `Expect: 100-continue` is answered `100 Continue` at once, unless an answer to an earlier
///   (pipelined) request is still owed, which a 100 must not overtake; the client then sends
///   its body after its own wait, as it would with a server that never answers.
/// - An HTTP/1.1 request without a `Host` header, or with more than one, is not valid (RFC 9112
///   §3.2), nor is one whose last transfer coding is not `chunked` (§6.3: its body cannot be
///   framed; it was answered 501 and then a bare 400, found from outside): it goes no further,
///   and the server answers 400 as for any input it cannot parse (`ConnectionDeadlines.parseFailed`);
///   the connection ends with it.
final class HTTP1VersionRules: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Versions of the requests whose answers have not ended, oldest first.
    private var owed: [HTTPVersion] = []
    /// A request or an answer ended the connection: no later (pipelined) request gets a 100.
    private var closing = false
    /// A request was refused as invalid: nothing more of the connection's input goes on.
    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        let isHTTP10 = Self.isBeforeHTTP11(head.version)
        if !isHTTP10, head.headers[canonicalForm: "host"].count != 1 {
            refused = true
            return context.fireErrorCaught(InvalidRequest("an HTTP/1.1 request has exactly one Host header"))
        }
        if let last = head.headers[canonicalForm: "transfer-encoding"].last, last.lowercased() != "chunked" {
            refused = true
            return context.fireErrorCaught(InvalidRequest("a Transfer-Encoding must end with chunked: the body cannot be framed"))
        }
        // NIO's encoder sends the answer to a CONNECT (404: no route is an authority) without
        // its body or length, so only the connection's end can end it.
        let isLast = isHTTP10 || !head.isKeepAlive || head.method == .CONNECT
        if isLast { head.headers.replaceOrAdd(name: "connection", value: "close") }
        if owed.isEmpty, !closing, !isHTTP10,
           head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
        }
        if isLast { closing = true }
        owed.append(head.version)
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            if head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "close" }) { closing = true }
            // The server's own 400 for unparsable input answers no request head.
            if let version = owed.first, Self.isBeforeHTTP11(version) { head.version = version }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            if !owed.isEmpty { owed.removeFirst() }
            context.write(data, promise: promise)
        }
    }

    private static func isBeforeHTTP11(_ version: HTTPVersion) -> Bool {
        version.major < 1 || (version.major == 1 && version.minor < 1)
    }
}

/// A request head that breaks HTTP/1.1's rules, which the server answers 400 as unparsable input.
struct InvalidRequest: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@available(*, unavailable)
extension HTTP1VersionRules: Sendable {}
