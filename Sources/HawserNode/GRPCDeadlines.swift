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
        /// A call the server cannot write to for this long (its client reads none of its answers:
        /// the stream's flow-control window stays full) is reset.
        var write: TimeAmount
    }

    /// One connection, fed the raw bytes in each direction.
    struct Connection {
        /// The client connection preface (24 bytes) and a frame header (9).
        static let handshakeBytes = 33

        let limits: Limits
        private(set) var deadline: NIODeadline?
        private var receivedBytes = 0
        private var outbound = LengthPrefixedRecords.http2Frames()
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
            guard !closing else { return }
            var goAway = false
            _ = outbound.consume(bytes) { header in if header[3] == Self.goAwayType { goAway = true } }
            guard goAway else { return }
            closing = true
            deadline = now + limits.closing
        }

        static let goAwayType: UInt8 = 0x7
    }

    /// One call (an HTTP/2 stream), fed its request's frames and the server's requests for more.
    /// A request message (a unary call's whole request) must arrive within `body` of time the
    /// server spends waiting for it: time it asks for no bytes (its places are full, it is busy)
    /// does not count, as for an HTTP/1.1 body (`ConnectionDeadlines`).
    struct Call {
        let limits: Limits
        /// A unary call: its request must end, not only its messages be complete.
        let unary: Bool
        private(set) var deadline: NIODeadline?
        private var messages = LengthPrefixedRecords.grpcMessages()
        private var ended = false
        /// A message (a unary request) has begun and is not yet complete.
        private var owed: Bool
        /// How long the server has waited for what is owed so far.
        private var waited = TimeAmount.zero
        /// Since when the server has asked for bytes that have not come; nil while it asks for none.
        private var readSince: NIODeadline?
        /// Since when the server has not been able to write to the call; nil while it can.
        private var unwritableSince: NIODeadline?

        init(limits: Limits, unary: Bool, endStream: Bool) {
            self.limits = limits
            self.unary = unary
            ended = endStream
            owed = unary && !endStream
        }

        /// The server asks for more of the request.
        mutating func readRequested(now: NIODeadline) {
            guard readSince == nil else { return }
            readSince = now
            rearm()
        }

        /// A DATA frame of the request.
        mutating func data(_ bytes: ByteBuffer, endStream: Bool, now: NIODeadline) {
            if let readSince { waited = waited + (now - readSince) }
            readSince = nil
            let wasPartial = messages.isPartial
            let completed = messages.consume(bytes)
            if endStream { ended = true }
            if unary {
                owed = !ended
            } else if !messages.isPartial {
                owed = false
            } else if !wasPartial || completed > 0 {
                (owed, waited) = (true, .zero)  // a new message began; it must be complete in time
            }
            rearm()
        }

        /// Trailers (HEADERS after the request's data): the request has ended.
        mutating func trailers() {
            ended = true
            if unary || !messages.isPartial { owed = false }
            rearm()
        }

        /// The call's stream became writable or not (HTTP/2 flow control: the client reads its answers or not).
        mutating func writable(_ writable: Bool, now: NIODeadline) {
            unwritableSince = writable ? nil : (unwritableSince ?? now)
            rearm()
        }

        private mutating func rearm() {
            let request = owed ? readSince.map { $0 + (limits.body - waited) } : nil
            let answers = unwritableSince.map { $0 + limits.write }
            deadline = [request, answers].compactMap { $0 }.min()
        }
    }

    /// A byte stream of records, each a fixed-size header that holds its body's length, then the
    /// body: a request's gRPC messages (5-byte header, the length in bytes 1-4) or a connection's
    /// HTTP/2 frames (9-byte header, the length in bytes 0-2, the type in byte 3). Fed in pieces
    /// of any size.
    struct LengthPrefixedRecords {
        let headerSize: Int
        /// Where in the header the body's length is, big-endian.
        let lengthBytes: Range<Int>
        private var header: [UInt8] = []
        private var remaining = 0
        /// The bytes read of the record in progress, its header's included (0 between records).
        private(set) var partialBytes = 0

        static func grpcMessages() -> Self { Self(headerSize: 5, lengthBytes: 1..<5) }
        static func http2Frames() -> Self { Self(headerSize: 9, lengthBytes: 0..<3) }

        init(headerSize: Int, lengthBytes: Range<Int>) {
            self.headerSize = headerSize
            self.lengthBytes = lengthBytes
        }

        /// Whether a record is partly read.
        var isPartial: Bool { !header.isEmpty || remaining > 0 }

        /// Reads on through `bytes`, handing each header read to `headerRead`; returns how many
        /// records they completed.
        mutating func consume(_ bytes: ByteBuffer, headerRead: ([UInt8]) -> Void = { _ in }) -> Int {
            var bytes = bytes, completed = 0
            while bytes.readableBytes > 0 {
                if remaining > 0 {
                    let skipped = min(remaining, bytes.readableBytes)
                    bytes.moveReaderIndex(forwardBy: skipped)
                    remaining -= skipped
                    partialBytes += skipped
                    if remaining == 0 { (completed, partialBytes) = (completed + 1, 0) }
                    continue
                }
                header.append(bytes.readInteger(as: UInt8.self)!)
                partialBytes += 1
                guard header.count == headerSize else { continue }
                headerRead(header)
                remaining = lengthBytes.reduce(0) { $0 << 8 | Int(header[$1]) }
                header = []
                if remaining == 0 { (completed, partialBytes) = (completed + 1, 0) }
            }
            return completed
        }
    }
}
