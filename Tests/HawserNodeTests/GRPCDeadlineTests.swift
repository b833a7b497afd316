import Foundation
import HawserTestSupport
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Prometheus
import Testing
@testable import HawserNode

/// The deadlines the gRPC listeners add to their HTTP/2 library (`GRPCDeadlines`): a client that
/// never finishes its handshake, never answers the closing PING, or never finishes its request
/// no longer holds a connection, a call or a shutdown for ever.
@Suite(.timeLimit(.minutes(2))) struct GRPCDeadlineTests {
    static let limits = GRPCDeadlines.Limits(handshake: .seconds(10), body: .seconds(30), closing: .seconds(10), write: .seconds(60))
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func theHandshakeDeadlineHoldsUntilThePrefaceAndAFrameHeaderArrived() {
        var connection = GRPCDeadlines.Connection(limits: Self.limits, acceptedAt: Self.t0)
        #expect(connection.deadline == Self.t0 + .seconds(10))
        connection.received(24)
        #expect(connection.deadline == Self.t0 + .seconds(10), "the preface alone")
        connection.received(9)
        #expect(connection.deadline == nil)
    }

    @Test func aGoAwayStartsTheClosingDeadlineWhereverItsHeaderIsSplit() {
        var connection = GRPCDeadlines.Connection(limits: Self.limits, acceptedAt: Self.t0)
        connection.received(33)
        // SETTINGS with one 6-byte entry, then a GOAWAY (8 bytes of payload) split inside its header.
        let settings: [UInt8] = [0, 0, 6, 4, 0, 0, 0, 0, 0] + [0, 3, 0, 0, 1, 0]
        let goAway: [UInt8] = [0, 0, 8, 7, 0, 0, 0, 0, 0] + [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]
        let bytes = settings + goAway
        connection.sent(ByteBuffer(bytes: bytes[..<(settings.count + 2)]), now: Self.t0)
        #expect(connection.deadline == nil)
        connection.sent(ByteBuffer(bytes: bytes[(settings.count + 2)...]), now: Self.t0 + .seconds(1))
        #expect(connection.deadline == Self.t0 + .seconds(11))
        // A payload byte that looks like a GOAWAY type is no header.
        var other = GRPCDeadlines.Connection(limits: Self.limits, acceptedAt: Self.t0)
        other.received(33)
        other.sent(ByteBuffer(bytes: [0, 0, 4, 0, 0, 0, 0, 0, 1] + [7, 7, 7, 7]), now: Self.t0)
        #expect(other.deadline == nil)
    }

    @Test func aUnaryRequestMustEndInTimeAStreamsMessagesMustEachBeComplete() {
        var unary = GRPCDeadlines.Call(limits: Self.limits, unary: true, endStream: false)
        #expect(unary.deadline == nil, "the server has not asked for the request yet")
        unary.readRequested(now: Self.t0)
        #expect(unary.deadline == Self.t0 + .seconds(30))
        unary.data(ByteBuffer(bytes: [0, 0, 0, 0, 2, 1, 2]), endStream: false, now: Self.t0)
        unary.readRequested(now: Self.t0)
        #expect(unary.deadline == Self.t0 + .seconds(30), "a whole message, but no end")
        unary.data(ByteBuffer(), endStream: true, now: Self.t0)
        #expect(unary.deadline == nil)

        var stream = GRPCDeadlines.Call(limits: Self.limits, unary: false, endStream: false)
        stream.readRequested(now: Self.t0)
        #expect(stream.deadline == nil, "a stream may wait for its first message")
        stream.data(ByteBuffer(bytes: [0, 0, 0, 0, 100, 1]), endStream: false, now: Self.t0 + .seconds(5))
        stream.readRequested(now: Self.t0 + .seconds(5))
        #expect(stream.deadline == Self.t0 + .seconds(35), "a message begun")
        stream.data(ByteBuffer(bytes: [UInt8](repeating: 1, count: 98)), endStream: false, now: Self.t0 + .seconds(6))
        stream.readRequested(now: Self.t0 + .seconds(6))
        #expect(stream.deadline == Self.t0 + .seconds(35), "its first byte counts, not the last")
        stream.data(ByteBuffer(bytes: [1, 0, 0]), endStream: false, now: Self.t0 + .seconds(7))
        stream.readRequested(now: Self.t0 + .seconds(7))
        #expect(stream.deadline == Self.t0 + .seconds(37), "complete, and the next begun")
        stream.data(ByteBuffer(bytes: [0, 0, 0]), endStream: false, now: Self.t0 + .seconds(8))
        stream.readRequested(now: Self.t0 + .seconds(8))
        #expect(stream.deadline == nil, "a zero-length message is whole with its prefix")
    }

    /// A message's time runs only while the server asks for its bytes. Before, a server that
    /// stopped reading a stream (its places full, its decisions slow) reset the call when a
    /// message it had itself held back passed the body time-out, with every request in flight on
    /// it (the class of the HTTP/1.1 body deadline found from outside in stop 53).
    @Test func timeTheServerDoesNotAskForBytesDoesNotCount() {
        var stream = GRPCDeadlines.Call(limits: Self.limits, unary: false, endStream: false)
        stream.readRequested(now: Self.t0)
        stream.data(ByteBuffer(bytes: [0, 0, 0, 0, 100, 1]), endStream: false, now: Self.t0 + .seconds(10))
        #expect(stream.deadline == nil, "the server asks for nothing: no deadline runs")
        // The server asks again a minute later; the message has its whole 30 s from then.
        stream.readRequested(now: Self.t0 + .seconds(70))
        #expect(stream.deadline == Self.t0 + .seconds(100))
        // 20 s of waiting spent; after another pause only the 10 s left remain.
        stream.data(ByteBuffer(bytes: [1]), endStream: false, now: Self.t0 + .seconds(90))
        stream.readRequested(now: Self.t0 + .seconds(200))
        #expect(stream.deadline == Self.t0 + .seconds(210))
        // A client that trickles while the server keeps asking is still cut off in time.
        for second in 201...209 {
            stream.data(ByteBuffer(bytes: [1]), endStream: false, now: Self.t0 + .seconds(Int64(second)))
            stream.readRequested(now: Self.t0 + .seconds(Int64(second)))
        }
        #expect(stream.deadline == Self.t0 + .seconds(210))
    }

    /// A call the server cannot write to (its client reads none of its answers) is reset after the
    /// write time-out, counted from when it stopped being writable; writable again, it runs no
    /// longer. It runs beside a request's deadline: the earlier one counts.
    @Test func aCallThatCannotBeWrittenToIsResetAfterTheWriteTimeOut() {
        var stream = GRPCDeadlines.Call(limits: Self.limits, unary: false, endStream: false)
        stream.writable(false, now: Self.t0)
        #expect(stream.deadline == Self.t0 + .seconds(60))
        stream.writable(false, now: Self.t0 + .seconds(10))
        #expect(stream.deadline == Self.t0 + .seconds(60), "still unwritable: counted from the first time")
        stream.writable(true, now: Self.t0 + .seconds(20))
        #expect(stream.deadline == nil)
        stream.writable(false, now: Self.t0 + .seconds(30))
        stream.readRequested(now: Self.t0 + .seconds(30))
        stream.data(ByteBuffer(bytes: [0, 0, 0, 0, 100, 1]), endStream: false, now: Self.t0 + .seconds(31))
        stream.readRequested(now: Self.t0 + .seconds(31))
        #expect(stream.deadline == Self.t0 + .seconds(61), "the message's 30 s end before the write's 60")
        stream.data(ByteBuffer(bytes: [UInt8](repeating: 1, count: 99)), endStream: false, now: Self.t0 + .seconds(32))
        #expect(stream.deadline == Self.t0 + .seconds(90), "the message complete, the write's deadline remains")
    }

    /// The call guard tells the streaming method from unary ones by its `:path`: a stream that
    /// waits between messages is left alone, a unary request that does not end is reset.
    @Test(arguments: [("/hawser.v1.Notary/NotariseStream", true), ("/hawser.v1.Notary/Notarise", false)])
    func onlyAStreamingCallMayWaitWithItsRequestOpen(path: String, staysOpen: Bool) throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: GRPCCallGuard(limits: Self.limits, streamingPaths: ["/hawser.v1.Notary/NotariseStream"],
                                                             budget: BodyBudget(limit: 1 << 20), calls: Self.calls(10), logger: quietLogger),
                                      loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(Self.headers(path))
        channel.read()  // the server asks for the request, as its stream channel does
        loop.advanceTime(to: .now() + .seconds(31))
        #expect(channel.isActive == staysOpen)
        _ = try? channel.finish()
    }

    /// A listener holds at most `grpc.maxCalls` calls open, over all its connections: one more is
    /// refused (RST_STREAM REFUSED_STREAM) before anything of it is read, and a call that ends
    /// gives its place back. Before, silent calls were bounded only by connections × streams
    /// each: 102,400 of them took a notary to 3.45 GB (found from outside).
    @Test func aCallOverTheListenersCapIsRefused() throws {
        let calls = Self.calls(1)
        func stream() throws -> EmbeddedChannel {
            let channel = EmbeddedChannel(handler: GRPCCallGuard(limits: Self.limits, streamingPaths: ["/hawser.v1.Notary/NotariseStream"],
                                                                 budget: BodyBudget(limit: 1 << 20), calls: calls, logger: quietLogger))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.writeInbound(Self.headers("/hawser.v1.Notary/NotariseStream"))
            return channel
        }
        let first = try stream()
        #expect(first.isActive)
        #expect(try first.readInbound(as: HTTP2Frame.FramePayload.self) != nil, "the call's headers are passed on")
        let second = try stream()
        #expect(!second.isActive)
        #expect(try second.readInbound(as: HTTP2Frame.FramePayload.self) == nil, "nothing of a refused call is passed on")
        guard case .rstStream(let code)? = try second.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            Issue.record("no RST_STREAM")
            return
        }
        #expect(code == .refusedStream)
        _ = try? first.finish()
        let third = try stream()
        #expect(third.isActive, "the ended call's place is free again")
        _ = try? third.finish()
        _ = try? second.finish()
    }

    static func calls(_ limit: Int) -> ListenerCap {
        ListenerCap(limit: limit, of: .calls, listener: "grpc", option: "grpc.maxCalls", registry: PrometheusCollectorRegistry(), logger: quietLogger)
    }

    static func headers(_ path: String) -> HTTP2Frame.FramePayload {
        .headers(.init(headers: HPACKHeaders([(":method", "POST"), (":path", path), (":scheme", "http"), ("content-type", "application/grpc")])))
    }

    // MARK: A real notary's gRPC listener

    /// An HTTP/2 client preface and an empty SETTINGS frame.
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]

    /// A notary process serving gRPC, with short header and body time-outs (the header one long
    /// enough that a loaded machine reads a client's first bytes in time: 500 ms was not, once).
    static func notary(in directory: String, idleTimeoutMillis: Int = 300_000) async throws -> (HawserProcess, grpcPort: Int) {
        let grpcPort = try FreePorts.take(1)[0]
        try writeNotaryFiles(in: directory) { c in
            c.grpc = GRPCConfiguration()
            c.grpc?.port = grpcPort
            c.grpc?.idleTimeoutMillis = idleTimeoutMillis
            c.http.headerTimeoutMillis = 3_000
            c.http.bodyTimeoutMillis = 1_000
        }
        let (process, _) = try await HawserProcess.notary(config: directory + "/hawser.json")
        // It prints this line once the gRPC listener is bound (the HTTP API's may come first).
        try await eventually("the gRPC listener bound", timeout: .seconds(30)) { process.printed.contains("grpc_listening") }
        return (process, grpcPort)
    }

    /// Before, a connection that sent nothing stayed open for good (the idle close waits for a PING
    /// answer): 2,000 of them took every file descriptor.
    @Test func aConnectionThatNeverSendsItsPrefaceIsClosed() async throws {
        let dir = try TemporaryDirectory()
        let (notary, port) = try await Self.notary(in: dir.path)
        do {
            let silent = try await RawConnection(port: port)
            #expect(await silent.read(within: .seconds(20)).closed)
        }
        _ = await notary.terminate()
    }

    /// Before, the notary never finished its graceful shutdown while such a client stayed connected.
    @Test func aShutdownEndsThoughAClientNeverAnswersTheClosingPing() async throws {
        let dir = try TemporaryDirectory()
        let (notary, port) = try await Self.notary(in: dir.path)
        let client = try await RawConnection(port: port)
        #expect(await client.send(Self.preface))
        _ = await client.read(within: .milliseconds(300))  // the server's SETTINGS
        #expect(await notary.terminate(within: .seconds(30)) == 0)
    }

    /// A unary call whose request never ends is reset (RST_STREAM) after the body time-out; before,
    /// it was held for as long as the client kept the connection.
    @Test func aUnaryCallWhoseRequestNeverEndsIsReset() async throws {
        let dir = try TemporaryDirectory()
        let (notary, port) = try await Self.notary(in: dir.path)
        do {
            let client = try await RawConnection(port: port)
            #expect(await client.send(Self.preface + Self.headers(stream: 1, path: "/hawser.v1.Notary/Identity")))
            var received = [UInt8]()
            let deadline = ContinuousClock.now + .seconds(20)
            while !Self.frames(in: received).contains(where: { $0.type == 3 && $0.stream == 1 }), ContinuousClock.now < deadline {
                let (bytes, closed) = await client.read(within: .milliseconds(200))
                received += bytes
                if closed { break }
            }
            #expect(Self.frames(in: received).contains { $0.type == 3 && $0.stream == 1 }, "no RST_STREAM: \(Self.frames(in: received))")
        }
        _ = await notary.terminate()
    }

    /// A `NotariseStream` whose client reads none of its results (it gives the server no HTTP/2
    /// flow-control window) is reset after `grpc.idleTimeoutMillis`, and what it had queued goes
    /// with it. Before, it stayed open for as long as the connection did, its results held.
    @Test func aStreamWhoseClientReadsNoResultIsReset() async throws {
        let dir = try TemporaryDirectory()
        let (notary, port) = try await Self.notary(in: dir.path, idleTimeoutMillis: 1_000)
        do {
            let client = try await RawConnection(port: port)
            // SETTINGS_INITIAL_WINDOW_SIZE 0: the server may send no DATA on any stream.
            let noWindow: [UInt8] = [0, 0, 6, 4, 0, 0, 0, 0, 0] + [0, 4, 0, 0, 0, 0]
            let settingsAck: [UInt8] = [0, 0, 0, 4, 1, 0, 0, 0, 0]
            // Streamed requests without a `request`: each is refused at once, a result to write;
            // enough that their results pass what the server queues for a stream (8 KB).
            let messages = (1...1_000).flatMap { id -> [UInt8] in [0, 0, 0, 0, 3, 0x08, UInt8(0x80 | id & 0x7f), UInt8(id >> 7)] }
            #expect(await client.send(Self.preface + noWindow + settingsAck + Self.headers(stream: 1, path: "/hawser.v1.Notary/NotariseStream")
                                      + GRPCMessageHoldTests.data(stream: 1, messages)))
            let reset = { (frames: [(type: UInt8, stream: UInt32, flags: UInt8)]) in frames.contains { $0.type == 3 && $0.stream == 1 } }
            let received = try await GRPCMessageHoldTests.read(client, until: reset)
            #expect(reset(Self.frames(in: received)), "no RST_STREAM: \(Self.frames(in: received))")
            #expect(!Self.frames(in: received).contains { $0.type == 0 && $0.stream == 1 }, "no DATA without a window")
        }
        _ = await notary.terminate()
    }

    /// A request that ends with its HEADERS frame, with no message, is answered (a unary call's
    /// `INTERNAL` "Empty stream.", a stream's end) rather than held open for good, with its
    /// connection past the idle time-out (found from outside).
    @Test(arguments: ["/hawser.v1.Notary/Notarise", "/hawser.v1.Notary/NotariseStream"])
    func aRequestThatEndsWithItsHeadersIsAnswered(path: String) async throws {
        let dir = try TemporaryDirectory()
        let (notary, port) = try await Self.notary(in: dir.path)
        do {
            let client = try await RawConnection(port: port)
            #expect(await client.send(Self.preface + Self.headers(stream: 1, path: path, endStream: true)))
            // The answer ends with a HEADERS frame (the trailers) carrying END_STREAM.
            let ended = { (frames: [(type: UInt8, stream: UInt32, flags: UInt8)]) in
                frames.contains { $0.type == 1 && $0.stream == 1 && $0.flags & 1 == 1 }
            }
            let received = try await GRPCMessageHoldTests.read(client, until: ended)
            #expect(ended(Self.frames(in: received)), "no end of the call: \(Self.frames(in: received))")
        }
        _ = await notary.terminate()
    }

    /// A HEADERS frame (END_HEADERS, and END_STREAM if `endStream`) of literal, unindexed, unencoded fields.
    static func headers(stream: UInt32, path: String, endStream: Bool = false) -> [UInt8] {
        var block = [UInt8]()
        for (name, value) in [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1"),
                              ("content-type", "application/grpc"), ("te", "trailers")] {
            block += [0, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
        }
        let length = block.count
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), 1, endStream ? 5 : 4]
            + [UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + block
    }

    /// The frames (type, stream, flags) in a server's bytes.
    static func frames(in bytes: [UInt8]) -> [(type: UInt8, stream: UInt32, flags: UInt8)] {
        var out: [(UInt8, UInt32, UInt8)] = [], at = 0
        while at + 9 <= bytes.count {
            let length = Int(bytes[at]) << 16 | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2])
            let stream = UInt32(bytes[at + 5] & 0x7f) << 24 | UInt32(bytes[at + 6]) << 16 | UInt32(bytes[at + 7]) << 8 | UInt32(bytes[at + 8])
            out.append((bytes[at + 3], stream, bytes[at + 4]))
            at += 9 + length
        }
        return out
    }
}
