import Foundation
import HawserWire
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Carries out `ConnectionDeadlines` on one HTTP/1.1 connection: it feeds the core what it sees
/// and closes the connection when a deadline passes. It sits after the HTTP codec, where request
/// and response parts pass; a companion at the head of the pipeline reports raw bytes, because a
/// head sent byte by byte makes no part until it is complete. It also installs `HTTP1VersionRules`.
final class ConnectionDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limits: ConnectionDeadlines.Limits
    private let logger: Logger
    private var core: ConnectionDeadlines?
    /// The parse error the server answers 400 for (see `ConnectionDeadlines.parseFailed`).
    private var parseError: (any Error)?
    private var context: ChannelHandlerContext?
    /// The one scheduled timer and when it fires; a later deadline waits for it to fire and re-arm.
    private var timer: (task: Scheduled<Void>, at: NIODeadline)?

    init(limits: ConnectionDeadlines.Limits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        do {
            let pipeline = context.pipeline.syncOperations
            try pipeline.addHandler(ByteObserver(owner: self), position: .first)
            try pipeline.addHandler(ReadGate(), position: .first)
            // Hummingbird adds handlers only after the codec's conversion to HTTP types.
            let conversion = try pipeline.handler(type: HTTP1ToHTTPServerCodec.self)
            try pipeline.addHandler(HTTP1VersionRules(), position: .before(conversion))
        } catch {
            context.fireErrorCaught(error)
        }
        if context.channel.isActive { start() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.task.cancel()
        timer = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // The same test Hummingbird makes to stop serving the connection after this request.
            update { $0.headReceived(now: .now(), closeAfter: head.headerFields[.connection] == "close") }
        case .body:
            break
        case .end:
            update { $0.endReceived(now: .now()) }
        }
        // Nobody reads a lingering connection's requests: they are dropped here.
        guard core?.phase != .lingering else { return }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        update { $0.readRequested(now: .now()) }
        context.read()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Keep reading what is dropped, so that the peer's close is seen (the request reader may
        // have stopped asking for more).
        if core?.phase == .lingering { context.read() }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        update { $0.writabilityChanged(writable: writable, now: .now()) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { update { $0.inputClosed() } }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError || error is InvalidRequest, core != nil else { return context.fireErrorCaught(error) }
        let (route, action) = core!.parseFailed(now: .now())
        parseError = error
        perform(action)
        // Within a request's body its handler hears of the error and answers it. Elsewhere
        // Hummingbird would answer a bare 400; the API's error body is answered here instead.
        if route == .handOver { context.fireErrorCaught(error) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(let head) = unwrapOutboundIn(data) { core?.answerStarting(status: head.status.code) }
        switch unwrapOutboundIn(data) {
        case .head(var head) where core?.answeringLast == true:
            head.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            // What follows an answer (a 400 of the server's own, say) is written after it.
            let next = core?.answerSent(now: .now()) ?? .none
            context.write(data, promise: promise)
            perform(next)
        default:
            context.write(data, promise: promise)
        }
    }

    fileprivate func bytesReceived() {
        update { $0.bytesReceived(now: .now()) }
    }

    private func start() {
        guard core == nil else { return }
        let core = ConnectionDeadlines(limits: limits, now: .now())
        self.core = core
        perform(core.initialAction)
    }

    private func update(_ event: (inout ConnectionDeadlines) -> ConnectionDeadlines.Action) {
        guard core != nil else { return }
        perform(event(&core!))
    }

    private func perform(_ action: ConnectionDeadlines.Action) {
        guard let context else { return }
        switch action {
        case .none:
            break
        case .arm(let deadline):
            arm(deadline, context)
        case .linger(let deadline):
            arm(deadline, context)
            context.read()
        case .answerMalformed(let deadline):
            answerMalformed(context)
            arm(deadline, context)
            context.read()
        case .close(let expiry):
            logger.debug("closing an HTTP connection: its \(expiry.rawValue) deadline passed",
                         metadata: ["peer": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"])
            context.close(promise: nil)
        }
    }

    /// 400 with the APIs' error body (both APIs share its shape and this code), and `Connection: close`.
    private func answerMalformed(_ context: ChannelHandlerContext) {
        let description = parseError.map { "\($0)" } ?? "unparsable input"
        let body = ErrorBodyJSON(APIError(.malformedRequest, "the request is not valid HTTP/1.1 (\(description))"))
        let bytes = ByteBuffer(bytes: (try? WireFormat.encoder.encode(body)) ?? Data())
        let head = HTTPResponse(status: .badRequest, headerFields: [.contentType: "application/json", .connection: "close",
                                                                     .contentLength: String(bytes.readableBytes)])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(bytes)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func arm(_ deadline: NIODeadline, _ context: ChannelHandlerContext) {
        if let timer, timer.at <= deadline { return }
        timer?.task.cancel()
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            update { $0.timerFired(now: .now()) }
        }
        timer = (task, deadline)
    }
}

/// Reports every read of raw bytes to its `ConnectionDeadlineHandler`, from the head of the pipeline.
private final class ByteObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let owner: ConnectionDeadlineHandler

    init(owner: ConnectionDeadlineHandler) { self.owner = owner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner.bytesReceived()
        context.fireChannelRead(data)
    }
}

/// Makes no read from the socket while the connection cannot take more of its answers, and the
/// read held once it can. Every handler's reads pass it, at the head of the pipeline: NIO's
/// pipelining handler reads the next request as soon as an answer is written, and a client that
/// read no answer grew the process by every answer queued (found from outside: 1.6 GB).
private final class ReadGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    private var held = false

    func read(context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            held = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if held, context.channel.isWritable {
            held = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }
}

@available(*, unavailable)
extension ConnectionDeadlineHandler: Sendable {}
