import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A gRPC server (plaintext HTTP/2) as a service of a process's group: the notary's (`grpc` in its
/// configuration) and the node's peer-to-peer listener (`network.listen`). On graceful shutdown
/// it stops accepting calls and lets the calls under way end (a client's stream ends when the
/// client closes it, or when the connection's GOAWAY grace runs out); it is listed after the
/// services its calls use, so it stops before them.
struct GRPCListener: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let draining: GRPCDraining
    let onListening: @Sendable (Int) async -> Void

    /// - Parameters:
    ///   - timeouts: the server's `http` section: its header timeout bounds the client's HTTP/2
    ///     handshake, its body timeout each request message (and a unary call's whole request).
    ///   - streamingPaths: the methods whose requests are streams (`/hawser.v1.Notary/NotariseStream`);
    ///     the others are unary.
    ///   - maxMessageBytesInFlight: the bytes of request messages arriving at once, over every call
    ///     of every connection (`GRPCMessageHold`).
    ///   - cap: the most connections open at once; `calls`: the most calls open at once, over them all.
    init(host: String, port: Int, maxMessageBytes: Int, maxMessageBytesInFlight: Int, cap: ListenerCap, calls: ListenerCap, maxConcurrentStreams: Int,
         idleTimeout: Duration, timeouts: HTTPSettings,
         streamingPaths: Set<String> = [], services: [any RegistrableRPCService], draining: GRPCDraining, logger: Logger,
         onListening: @escaping @Sendable (Int) async -> Void) {
        let address: GRPCNIOTransportHTTP2.SocketAddress = host.contains(":")
            ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
        let transport = HTTP2ServerTransport.Posix(
            address: address, transportSecurity: .plaintext,
            config: .defaults { config in
                config.rpc.maxRequestPayloadSize = maxMessageBytes
                config.http2.maxConcurrentStreams = maxConcurrentStreams
                config.connection.maxIdleTime = idleTimeout
                // Calls still open when the server stops get this long before the connection closes.
                config.connection.maxGraceTime = Self.grace
                // What the library leaves unbounded (`GRPCDeadlines`).
                let budget = BodyBudget(limit: maxMessageBytesInFlight)
                let limits = GRPCDeadlines.Limits(handshake: .milliseconds(Int64(timeouts.headerTimeoutMillis)),
                                                  body: .milliseconds(Int64(timeouts.bodyTimeoutMillis)),
                                                  closing: TimeAmount(Self.grace + Self.pingAnswer),
                                                  write: TimeAmount(idleTimeout))
                config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.addHandler(GRPCConnectionGuard(limits: limits, logger: logger), position: .first)
                        try pipeline.addHandler(ConnectionCapHandler(cap: cap), position: .first)
                    }
                }
                config.channelDebuggingCallbacks.onAcceptHTTP2Stream = { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(GRPCCallGuard(limits: limits, streamingPaths: streamingPaths, budget: budget,
                                                                                   calls: calls, logger: logger), position: .first)
                    }
                }
            })
        self.server = GRPCServer(transport: transport, services: services)
        self.draining = draining
        self.onListening = onListening
    }

    /// How long calls still open when the server stops (or closes an idle connection) may run on.
    static let grace = Duration.seconds(5)
    /// How long a client has to answer the PING after the server's first GOAWAY, on top of the grace.
    static let pingAnswer = Duration.seconds(5)

    /// Cancelled (another service of the process failed), it stops as on a graceful shutdown:
    /// the transport cancelled while it accepts a connection leaves that connection's writer
    /// unfinished, and NIO then stops the whole process (swift-nio issue 2813), spending seconds
    /// on a backtrace before a supervisor can start it again. So `serve()` runs in a task of its
    /// own, which cancellation does not reach.
    func run() async throws {
        let serving = Task { try await server.serve() }
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                let bound = try await server.listeningAddress
                if let port = bound?.ipv4?.port ?? bound?.ipv6?.port { await onListening(port) }
                try await serving.value
            } onCancel: {
                stop()
            }
        } onGracefulShutdown: {
            stop()
        }
    }

    private func stop() {
        draining.begin()
        server.beginGracefulShutdown()
    }
}

/// Whether the gRPC server has begun its graceful shutdown. gRPC cancels every call's handle when
/// it does, as it does when a client goes away; a service tells the two apart by this.
final class GRPCDraining: Sendable {
    private let begun = Atomic(false)

    var isDraining: Bool { begun.load(ordering: .acquiring) }
    func begin() { begun.store(true, ordering: .releasing) }
}
