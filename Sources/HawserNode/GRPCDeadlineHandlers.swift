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
    private var timer: Scheduled<Void>?

    init(limits: GRPCDeadlines.Limits, logger: Logger) {
        core = GRPCDeadlines.Connection(limits: limits, acceptedAt: .now())
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }

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

    /// One timer at the core's deadline (none when it has none).
    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        guard let deadline = core.deadline else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) { [logger] in
            logger.debug("closing a gRPC connection: its handshake or its closing took too long")
            loopBound.value.close(promise: nil)
        }
    }
}

/// Carries out `GRPCDeadlines.Call` on one call's HTTP/2 stream: it sees the request's frames and
/// resets the stream (RST_STREAM CANCEL) when its deadline passes.
final class GRPCCallGuard: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload

    private let limits: GRPCDeadlines.Limits
    private let streamingPaths: Set<String>
    private var core: GRPCDeadlines.Call?
    private var timer: Scheduled<Void>?

    init(limits: GRPCDeadlines.Limits, streamingPaths: Set<String>) {
        self.limits = limits
        self.streamingPaths = streamingPaths
    }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if core == nil {
                let path = headers.headers.first(name: ":path") ?? ""
                core = GRPCDeadlines.Call(limits: limits, unary: !streamingPaths.contains(path), headersAt: .now(),
                                          endStream: headers.endStream)
            } else {
                core?.trailers()
            }
            arm(context)
        case .data(let data):
            if case .byteBuffer(let bytes) = data.data {
                core?.data(bytes, endStream: data.endStream, now: .now())
                arm(context)
            }
        default:
            break
        }
        context.fireChannelRead(data)
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        guard let deadline = core?.deadline else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            loopBound.value.close(promise: nil)
        }
    }
}
