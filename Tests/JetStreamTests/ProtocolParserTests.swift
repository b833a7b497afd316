import NIOCore
import Testing

@testable import JetStream

@Suite("Protocol parser", .timeLimit(.minutes(10)))
struct ProtocolParserTests {
    /// Feeds `chunks` and collects every operation.
    static func parse(_ chunks: [[UInt8]], parser: ProtocolParser = ProtocolParser()) throws -> [ServerOp] {
        var parser = parser
        var ops: [ServerOp] = []
        for chunk in chunks {
            parser.append(ByteBuffer(bytes: chunk))
            while let op = try parser.next() { ops.append(op) }
        }
        #expect(parser.bufferedBytes == 0)
        return ops
    }

    static let stream: String =
        "INFO {\"server_id\":\"S1\",\"version\":\"2.9.10\",\"headers\":true,\"max_payload\":1048576,\"connect_urls\":[\"127.0.0.1:4223\"]}\r\n"
        + "PING\r\nPONG\r\n+OK\r\n"
        + "MSG foo.bar 9 11\r\nhello world\r\n"
        + "MSG foo.bar 9 reply.to 0\r\n\r\n"
        + "HMSG foo 3 _INBOX.x 24 29\r\nNATS/1.0\r\nA: 1\r\nA: 2\r\n\r\nhello\r\n"
        + "HMSG foo 3 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
        + "HMSG foo 3 32 32\r\nNATS/1.0 408 Request Timeout\r\n\r\n\r\n"
        + "-ERR 'Unknown Subject'\r\n"

    static func expectedOps() -> [ServerOp] {
        var info = ServerInfo(serverID: "S1", version: "2.9.10", proto: 0, host: "", port: 0, headers: true)
        info.connectURLs = ["127.0.0.1:4223"]
        return [
            .info(info), .ping, .pong, .ok,
            .msg(NATSMessage(subject: "foo.bar", subscriptionID: 9, payload: ByteBuffer(string: "hello world"))),
            .msg(NATSMessage(subject: "foo.bar", subscriptionID: 9, replyTo: "reply.to", payload: ByteBuffer())),
            .msg(
                NATSMessage(
                    subject: "foo", subscriptionID: 3, replyTo: "_INBOX.x",
                    headers: NATSHeaders([("A", "1"), ("A", "2")]), payload: ByteBuffer(string: "hello"))),
            .msg(NATSMessage(subject: "foo", subscriptionID: 3, headers: NATSHeaders(status: 503), payload: ByteBuffer())),
            .msg(
                NATSMessage(
                    subject: "foo", subscriptionID: 3,
                    headers: NATSHeaders(status: 408, statusDescription: "Request Timeout"), payload: ByteBuffer())),
            .err("Unknown Subject"),
        ]
    }

    @Test func parsesEveryOperationInOneChunk() throws {
        let ops = try Self.parse([Array(Self.stream.utf8)])
        #expect(ops == Self.expectedOps())
    }

    @Test func parsesWhenSplitAtEveryByteBoundary() throws {
        let bytes = Array(Self.stream.utf8)
        let expected = Self.expectedOps()
        for split in 1..<bytes.count {
            let ops = try Self.parse([Array(bytes[..<split]), Array(bytes[split...])])
            #expect(ops == expected, "split at \(split)")
        }
    }

    @Test func parsesByteByByte() throws {
        let ops = try Self.parse(Array(Self.stream.utf8).map { [$0] })
        #expect(ops == Self.expectedOps())
    }

    @Test func parsesLargePayloadsInUnevenChunks() throws {
        let payload = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var bytes = Array("MSG big 1 \(payload.count)\r\n".utf8) + payload + Array("\r\n".utf8)
        bytes += Array("HMSG big 1 r 12 \(12 + payload.count)\r\nNATS/1.0\r\n\r\n".utf8) + payload + Array("\r\nPING\r\n".utf8)
        var chunks: [[UInt8]] = []
        var i = 0
        var size = 1
        while i < bytes.count {
            let end = min(bytes.count, i + size)
            chunks.append(Array(bytes[i..<end]))
            i = end
            size = size * 7 % 65_521 + 1
        }
        let ops = try Self.parse(chunks)
        #expect(ops.count == 3)
        guard case .msg(let first) = ops[0], case .msg(let second) = ops[1] else {
            Issue.record("expected messages")
            return
        }
        #expect(first.bytes == payload)
        #expect(second.bytes == payload)
        #expect(second.headers == NATSHeaders())
        #expect(second.replyTo == "r")
        #expect(ops[2] == .ping)
    }

    @Test func operationsAreCaseInsensitiveAndToleratesExtraSpaces() throws {
        let ops = try Self.parse([Array("ping\r\nmsg  a\t1   2\r\nhi\r\n".utf8)])
        #expect(ops == [.ping, .msg(NATSMessage(subject: "a", subscriptionID: 1, payload: ByteBuffer(string: "hi")))])
    }

    @Test func rejectsUnknownOperations() {
        #expect(throws: ProtocolParser.Error.unknownOperation("HELLO world")) {
            try Self.parse([Array("HELLO world\r\n".utf8)])
        }
    }

    @Test func rejectsMalformedMessages() {
        #expect(throws: ProtocolParser.Error.malformed("MSG foo x 3")) { try Self.parse([Array("MSG foo x 3\r\nabc\r\n".utf8)]) }
        #expect(throws: ProtocolParser.Error.malformed("MSG foo")) { try Self.parse([Array("MSG foo\r\n".utf8)]) }
        #expect(throws: ProtocolParser.Error.malformed("HMSG foo 1 10 5")) {
            try Self.parse([Array("HMSG foo 1 10 5\r\n".utf8)])
        }
        #expect(throws: ProtocolParser.Error.missingPayloadTerminator) {
            try Self.parse([Array("MSG foo 1 3\r\nabcdef\r\n".utf8)])
        }
    }

    @Test func rejectsBadHeaderBlocks() {
        #expect(throws: ProtocolParser.Error.self) {
            try Self.parse([Array("HMSG foo 1 10 10\r\nHTTP/1.1\r\n\r\n\r\n".utf8)])
        }
    }

    @Test func rejectsOverlongControlLinesWithoutWaitingForTheEnd() {
        let parser = ProtocolParser(maxControlLineLength: 16)
        #expect(throws: ProtocolParser.Error.controlLineTooLong(limit: 16)) {
            try Self.parse([Array("MSG aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8)], parser: parser)
        }
    }

    @Test func rejectsMessagesAboveTheLimit() {
        let parser = ProtocolParser(maxMessageSize: 10)
        #expect(throws: ProtocolParser.Error.payloadTooLarge(size: 11, limit: 10)) {
            try Self.parse([Array("MSG a 1 11\r\n".utf8)], parser: parser)
        }
    }

    @Test func rejectsBrokenInfo() {
        #expect(throws: ProtocolParser.Error.self) { try Self.parse([Array("INFO {nope\r\n".utf8)]) }
    }

    @Test func errWithoutQuotes() throws {
        #expect(try Self.parse([Array("-ERR Authorization Violation\r\n".utf8)]) == [.err("Authorization Violation")])
    }
}

@Suite("Headers and commands", .timeLimit(.minutes(10)))
struct HeaderTests {
    @Test func roundTripsHeaders() throws {
        var headers = NATSHeaders([("Nats-Msg-Id", "abc"), ("X", "1")])
        headers.append("2", for: "x")
        var buffer = ByteBuffer()
        HeaderCoding.write(headers, into: &buffer)
        #expect(buffer.readableBytes == HeaderCoding.encodedSize(headers))
        let parsed = try HeaderCoding.parse(buffer.readableBytesView)
        #expect(parsed == headers)
        #expect(parsed["nats-msg-id"] == "abc")
        #expect(parsed.values(for: "X") == ["1", "2"])
    }

    @Test func statusLinesRoundTrip() throws {
        let headers = NATSHeaders(status: 100, statusDescription: "Idle Heartbeat", [("Nats-Last-Consumer", "4")])
        var buffer = ByteBuffer()
        HeaderCoding.write(headers, into: &buffer)
        #expect(String(buffer: buffer) == "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 4\r\n\r\n")
        #expect(try HeaderCoding.parse(buffer.readableBytesView) == headers)
    }

    @Test func rejectsUnencodableHeaders() {
        #expect(throws: NATSError.self) { try HeaderCoding.validate(NATSHeaders([("Bad Name", "v")])) }
        #expect(throws: NATSError.self) { try HeaderCoding.validate(NATSHeaders([("A", "line\r\nbreak")])) }
    }

    @Test func encodesClientCommands() {
        var buffer = ByteBuffer()
        ClientCommand.publish(subject: "a.b", replyTo: nil, headers: nil, payload: ByteBuffer(string: "hi"), into: &buffer)
        ClientCommand.publish(
            subject: "a.b", replyTo: "r", headers: NATSHeaders([("K", "V")]), payload: ByteBuffer(string: "hi"),
            into: &buffer)
        ClientCommand.subscribe(subject: "a.>", queue: "q", sid: 7, into: &buffer)
        ClientCommand.unsubscribe(sid: 7, max: 3, into: &buffer)
        #expect(
            String(buffer: buffer)
                == "PUB a.b 2\r\nhi\r\nHPUB a.b r 18 20\r\nNATS/1.0\r\nK: V\r\n\r\nhi\r\nSUB a.> q 7\r\nUNSUB 7 3\r\n")
    }

    @Test func encodesConnect() {
        var info = ConnectInfo()
        info.user = "u"
        info.pass = "p"
        var buffer = ByteBuffer()
        ClientCommand.connect(info, into: &buffer)
        let text = String(buffer: buffer)
        #expect(text.hasPrefix("CONNECT {"))
        #expect(text.hasSuffix("}\r\n"))
        #expect(text.contains("\"headers\":true"))
        #expect(text.contains("\"no_responders\":true"))
        #expect(text.contains("\"user\":\"u\""))
        #expect(!text.contains("auth_token"))
    }

    @Test func validatesSubjects() {
        #expect(throws: NATSError.invalidSubject("")) { try SubjectValidation.check("") }
        #expect(throws: NATSError.invalidSubject("a b")) { try SubjectValidation.check("a b") }
        #expect(throws: Never.self) { try SubjectValidation.check("$JS.API.INFO") }
    }

    @Test func parsesServerURLs() throws {
        let a = try ServerAddress("nats://alice:s%40cret@example.com:4333")
        #expect(a.host == "example.com" && a.port == 4333 && a.user == "alice" && a.password == "s@cret")
        #expect(!a.requiresTLS)
        let b = try ServerAddress("tls://tok@10.0.0.1")
        #expect(b.port == 4222 && b.token == "tok" && b.requiresTLS)
        let c = try ServerAddress("127.0.0.1:4223")
        #expect(c.host == "127.0.0.1" && c.port == 4223)
        let d = try ServerAddress("[::1]:5000")
        #expect(d.host == "::1" && d.port == 5000)
        #expect(throws: NATSError.self) { try ServerAddress("http://x:1") }
        #expect(throws: NATSError.self) { try ServerAddress("x:notaport") }
    }
}
