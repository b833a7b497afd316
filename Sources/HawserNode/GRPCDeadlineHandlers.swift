import Logging
import NIOCore
import NIOHTTP2

/// Carries out `GRPCDeadlines.Connection` on one accepted gRPC connection: it sits at the head
/// of the pipeline, sees the raw bytes both ways, and closes the connection when its deadline
/// passes.
final class GRPCConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private var core: GRPCDeadlines.Connection
    private let logger: Logger
    private var timer = ClosingTimer()

    init(limits: GRPCDeadlines.Limits, logger: Logger) {
        core = GRPCDeadlines.Connection(limits: limits, acceptedAt: .now())
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }

    func handlerRemoved(context: ChannelHandlerContext) { timer.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.received(unwrapInboundIn(data).readableBytes)
        arm(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .byteBuffer(let bytes) = unwrapOutboundIn(data) {
            core.sent(bytes, now: .now())
            arm(context)
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer.arm(core.deadline, context) { [logger] in
            logger.debug("closing a gRPC connection: its handshake or its closing took too long")
        }
    }
}

/// Carries out `GRPCDeadlines.Call`, `GRPCMessageHold` and the listener's calls cap on one call's
/// HTTP/2 stream: it sees the request's frames and the stream's writability, refuses the call
/// (RST_STREAM REFUSED_STREAM) if the listener holds as many calls as it may, and resets the
/// stream (RST_STREAM CANCEL) when its deadline passes or a message does not fit in the
/// listener's budget. A reset drops what the call had queued to write.
final class GRPCCallGuard: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let limits: GRPCDeadlines.Limits
    private let streamingPaths: Set<String>
    private var core: GRPCDeadlines.Call?
    private var hold: GRPCMessageHold
    private let calls: ListenerCap
    /// Whether `calls` counted this call in (it gives its place back when the stream goes).
    private var admitted = false
    private var timer = ClosingTimer()
    private let logger: Logger

    init(limits: GRPCDeadlines.Limits, streamingPaths: Set<String>, budget: BodyBudget, calls: ListenerCap, logger: Logger) {
        self.limits = limits
        self.streamingPaths = streamingPaths
        hold = GRPCMessageHold(budget: budget)
        self.calls = calls
        self.logger = logger
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer.cancel()
        hold.release()
        if admitted { calls.release() }
        admitted = false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(var headers):
            if core == nil {
                guard calls.admit() else {
                    // Refused before anything of it is read: the client may send it again.
                    context.writeAndFlush(NIOAny(HTTP2Frame.FramePayload.rstStream(.refusedStream)), promise: nil)
                    context.close(promise: nil)
                    return
                }
                admitted = true
                let path = headers.headers.first(name: ":path") ?? ""
                core = GRPCDeadlines.Call(limits: limits, unary: !streamingPaths.contains(path), endStream: headers.endStream)
                timer.arm(core?.deadline, context)
                if headers.endStream {
                    // A request that ends with its headers (no message at all) was never answered
                    // by the gRPC server, which answers the same request ended by an empty DATA
                    // frame at once (`INTERNAL`, "Empty stream."): it is passed on as that.
                    headers.endStream = false
                    context.fireChannelRead(wrapInboundOut(.headers(headers)))
                    context.fireChannelRead(wrapInboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))))
                    return
                }
            } else {
                core?.trailers()
                timer.arm(core?.deadline, context)
            }
        case .data(let data):
            if case .byteBuffer(let bytes) = data.data {
                guard hold.data(bytes) else {
                    logger.debug("resetting a gRPC call: its request message does not fit beside those arriving",
                                 metadata: ["limit": "\(hold.budget.limit)"])
                    context.close(promise: nil)
                    return
                }
                core?.data(bytes, endStream: data.endStream, now: .now())
                timer.arm(core?.deadline, context)
            }
        default:
            break
        }
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if core != nil {
            core?.writable(context.channel.isWritable, now: .now())
            timer.arm(core?.deadline, context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// The server asks for more of the request: only then does a message's time run.
    func read(context: ChannelHandlerContext) {
        if core != nil {
            core?.readRequested(now: .now())
            timer.arm(core?.deadline, context)
        }
        context.read()
    }
}

/// One timer at a deadline that closes the channel when it passes (a stream channel's close
/// resets its stream); armed anew whenever the deadline may have moved.
struct ClosingTimer {
    private var scheduled: Scheduled<Void>?

    mutating func arm(_ deadline: NIODeadline?, _ context: ChannelHandlerContext, closing: @escaping @Sendable () -> Void = {}) {
        cancel()
        guard let deadline else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        scheduled = context.eventLoop.scheduleTask(deadline: deadline) {
            closing()
            loopBound.value.close(promise: nil)
        }
    }

    mutating func cancel() {
        scheduled?.cancel()
        scheduled = nil
    }
}
