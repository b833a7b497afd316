import NIOCore

/// The deadlines of one gRPC (HTTP/2) server connection and its calls that the HTTP/2 library
/// leaves unbounded (grpc-swift-nio-transport 2.x), as values driven by events (sans-I/O: time
/// is an input, deadlines are returned). The library closes idle connections and drains on
/// shutdown with a GOAWAY followed by a PING, and starts its grace period only once the PING is
/// answered: a peer that never answers, or never sends its preface, held the connection (and a
/// graceful shutdown) for ever.
enum GRPCDeadlines {
    struct Limits: Sendable, Equatable {
        /// The client's preface and first frame must arrive within this of the accept.
        var handshake: TimeAmount
        /// A request message must be complete within this of its first byte; a unary call's
        /// request must end within this of its headers.
        var body: TimeAmount
        /// After the server's first GOAWAY (idle, shutdown), the connection closes within this.
        var closing: TimeAmount
    }

    /// One connection, fed the raw bytes in each direction.
    struct Connection {
        /// The client connection preface (24 bytes) and a frame header (9).
        static let handshakeBytes = 33

        let limits: Limits
        private(set) var deadline: NIODeadline?
        private var receivedBytes = 0
        private var outbound = FrameHeaders()
        private var closing = false

        init(limits: Limits, acceptedAt now: NIODeadline) {
            self.limits = limits
            deadline = now + limits.handshake
        }

        /// Bytes from the client.
        mutating func received(_ count: Int) {
            guard receivedBytes < Self.handshakeBytes else { return }
            receivedBytes += count
            if receivedBytes >= Self.handshakeBytes, !closing { deadline = nil }
        }

        /// Bytes to the client: a GOAWAY among them starts the closing deadline (once).
        mutating func sent(_ bytes: ByteBuffer, now: NIODeadline) {
            guard !closing, outbound.scan(bytes, for: FrameHeaders.goAway) else { return }
            closing = true
            deadline = now + limits.closing
        }
    }

    /// One call (an HTTP/2 stream), fed its request's frames.
    struct Call {
        let limits: Limits
        /// A unary call: its request must end, not only its messages be complete.
        let unary: Bool
        private(set) var deadline: NIODeadline?
        private var messages = MessageFraming()
        private var ended = false

        init(limits: Limits, unary: Bool, headersAt now: NIODeadline, endStream: Bool) {
            self.limits = limits
            self.unary = unary
            ended = endStream
            if unary, !endStream { deadline = now + limits.body }
        }

        /// A DATA frame of the request.
        mutating func data(_ bytes: ByteBuffer, endStream: Bool, now: NIODeadline) {
            let wasPartial = messages.isPartial
            let completed = messages.consume(bytes)
            if endStream { ended = true }
            if unary {
                if ended { deadline = nil }
            } else if !messages.isPartial {
                deadline = nil
            } else if !wasPartial || completed > 0 {
                deadline = now + limits.body  // a new message began; it must be complete in time
            }
        }

        /// Trailers (HEADERS after the request's data): the request has ended.
        mutating func trailers() {
            ended = true
            if unary || !messages.isPartial { deadline = nil }
        }
    }

    /// The gRPC length-prefixed messages of a request (1 flag byte, 4 length bytes, the message),
    /// as far as seen: whether one is partly received.
    struct MessageFraming {
        private var prefix: [UInt8] = []
        private var remaining = 0

        var isPartial: Bool { !prefix.isEmpty || remaining > 0 }

        /// Reads on through `bytes`; returns how many messages they completed.
        mutating func consume(_ bytes: ByteBuffer) -> Int {
            var bytes = bytes, completed = 0
            while bytes.readableBytes > 0 {
                if remaining > 0 {
                    let skipped = min(remaining, bytes.readableBytes)
                    bytes.moveReaderIndex(forwardBy: skipped)
                    remaining -= skipped
                    if remaining == 0 { completed += 1 }
                    continue
                }
                prefix.append(bytes.readInteger(as: UInt8.self)!)
                if prefix.count == 5 {
                    remaining = Int(prefix[1]) << 24 | Int(prefix[2]) << 16 | Int(prefix[3]) << 8 | Int(prefix[4])
                    prefix = []
                    if remaining == 0 { completed += 1 }
                }
            }
            return completed
        }
    }

    /// The frame headers (9 bytes: length 3, type 1, flags 1, stream 4) of an HTTP/2 byte stream
    /// from its first frame on, as far as seen.
    struct FrameHeaders {
        static let goAway: UInt8 = 0x7
        private var header: [UInt8] = []
        private var remaining = 0

        /// Reads on through `bytes`; whether a frame of `type` began in them.
        mutating func scan(_ bytes: ByteBuffer, for type: UInt8) -> Bool {
            var bytes = bytes, found = false
            while bytes.readableBytes > 0 {
                if remaining > 0 {
                    let skipped = min(remaining, bytes.readableBytes)
                    bytes.moveReaderIndex(forwardBy: skipped)
                    remaining -= skipped
                    continue
                }
                header.append(bytes.readInteger(as: UInt8.self)!)
                if header.count == 9 {
                    remaining = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
                    if header[3] == type { found = true }
                    header = []
                }
            }
            return found
        }
    }
}
