import Foundation
import NIOCore

/// An operation sent by the server.
enum ServerOp: Sendable, Hashable {
    case info(ServerInfo)
    case msg(NATSMessage)
    case ping
    case pong
    case ok
    case err(String)
}

/// Sans-I/O parser for the server side of the NATS client protocol.
///
/// Feed it bytes in any split with ``append(_:)`` and pull complete operations with ``next()``
/// until it returns `nil`. After an error the stream is unusable; the caller closes the connection.
struct ProtocolParser {
    enum Error: Swift.Error, Hashable {
        case unknownOperation(String)
        case malformed(String)
        case controlLineTooLong(limit: Int)
        case payloadTooLarge(size: Int, limit: Int)
        case missingPayloadTerminator
        case invalidHeaders(String)
        case invalidInfo(String)
    }

    private struct PendingPayload {
        var subject: String
        var sid: UInt64
        var replyTo: String?
        var headerLength: Int?
        var totalLength: Int
    }

    /// The longest accepted control line (`INFO` with many `connect_urls` can be long).
    let maxControlLineLength: Int
    /// The largest accepted message (headers and payload).
    let maxMessageSize: Int

    private var buffer = ByteBuffer()
    /// Bytes after the reader index already searched for a line feed.
    private var scanned = 0
    private var pending: PendingPayload?

    init(maxControlLineLength: Int = 64 * 1024, maxMessageSize: Int = 64 * 1024 * 1024) {
        self.maxControlLineLength = maxControlLineLength
        self.maxMessageSize = maxMessageSize
    }

    /// Bytes received but not yet consumed.
    var bufferedBytes: Int { buffer.readableBytes }

    mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes
            scanned = 0
        } else {
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }
    }

    /// The next complete operation, or `nil` when more bytes are needed.
    mutating func next() throws(Error) -> ServerOp? {
        if let p = pending {
            return try readPayload(p)
        }
        guard let line = try readLine() else { return nil }
        return try parseControlLine(line)
    }

    // MARK: - Lines

    /// Reads one control line without its line ending, or `nil` if incomplete.
    private mutating func readLine() throws(Error) -> [UInt8]? {
        let view = buffer.readableBytesView
        let start = view.startIndex + scanned
        if let lf = view[start...].firstIndex(of: UInt8(ascii: "\n")) {
            var end = lf
            if end > view.startIndex && view[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = Array(view[view.startIndex..<end])
            buffer.moveReaderIndex(forwardBy: lf - view.startIndex + 1)
            scanned = 0
            compactIfNeeded()
            if line.count > maxControlLineLength { throw .controlLineTooLong(limit: maxControlLineLength) }
            return line
        }
        scanned = view.count
        if scanned > maxControlLineLength + 2 { throw .controlLineTooLong(limit: maxControlLineLength) }
        return nil
    }

    private mutating func compactIfNeeded() {
        if buffer.readableBytes == 0 {
            buffer.clear()
        } else if buffer.readerIndex > 1 << 16 && buffer.readerIndex > buffer.readableBytes {
            buffer.discardReadBytes()
        }
    }

    // MARK: - Control lines

    private mutating func parseControlLine(_ line: [UInt8]) throws(Error) -> ServerOp? {
        // The operation name ends at the first space or tab.
        let opEnd = line.firstIndex(where: { $0 == 32 || $0 == 9 }) ?? line.count
        let op = String(decoding: line[0..<opEnd], as: UTF8.self).uppercased()
        let rest = line[opEnd...].drop(while: { $0 == 32 || $0 == 9 })
        switch op {
        case "MSG":
            let args = Self.split(rest)
            guard args.count == 3 || args.count == 4 else { throw .malformed(Self.printable(line)) }
            guard let sid = UInt64(args[1]), let total = Int(args[args.count - 1]), total >= 0 else {
                throw .malformed(Self.printable(line))
            }
            try checkSize(total)
            pending = PendingPayload(
                subject: args[0], sid: sid, replyTo: args.count == 4 ? args[2] : nil,
                headerLength: nil, totalLength: total)
            return try readPayload(pending!)
        case "HMSG":
            let args = Self.split(rest)
            guard args.count == 4 || args.count == 5 else { throw .malformed(Self.printable(line)) }
            guard let sid = UInt64(args[1]), let headerLength = Int(args[args.count - 2]),
                let total = Int(args[args.count - 1]), headerLength >= 0, total >= headerLength
            else { throw .malformed(Self.printable(line)) }
            try checkSize(total)
            pending = PendingPayload(
                subject: args[0], sid: sid, replyTo: args.count == 5 ? args[2] : nil,
                headerLength: headerLength, totalLength: total)
            return try readPayload(pending!)
        case "PING":
            return .ping
        case "PONG":
            return .pong
        case "+OK":
            return .ok
        case "-ERR":
            var text = String(decoding: rest, as: UTF8.self)
            text = String(Substring(text).trimmingSpaces())
            if text.hasPrefix("'") && text.hasSuffix("'") && text.count >= 2 {
                text = String(text.dropFirst().dropLast())
            }
            return .err(text)
        case "INFO":
            do {
                let info = try JSONDecoder().decode(ServerInfo.self, from: Data(rest))
                return .info(info)
            } catch {
                throw .invalidInfo(String(describing: error))
            }
        case "":
            // Tolerate empty lines between operations.
            return try next()
        default:
            throw .unknownOperation(Self.printable(line))
        }
    }

    private func checkSize(_ total: Int) throws(Error) {
        if total > maxMessageSize { throw .payloadTooLarge(size: total, limit: maxMessageSize) }
    }

    private mutating func readPayload(_ p: PendingPayload) throws(Error) -> ServerOp? {
        guard buffer.readableBytes >= p.totalLength + 2 else { return nil }
        var headers: NATSHeaders?
        if let hl = p.headerLength {
            let headerBytes = buffer.readSlice(length: hl)!
            if hl > 0 { headers = try HeaderCoding.parse(headerBytes.readableBytesView) }
        }
        let payload = buffer.readSlice(length: p.totalLength - (p.headerLength ?? 0))!
        guard buffer.readInteger(as: UInt8.self) == 13, buffer.readInteger(as: UInt8.self) == 10 else {
            throw .missingPayloadTerminator
        }
        pending = nil
        scanned = 0
        compactIfNeeded()
        return .msg(
            NATSMessage(
                subject: p.subject, subscriptionID: p.sid, replyTo: p.replyTo, headers: headers,
                payload: payload))
    }

    private static func split(_ bytes: ArraySlice<UInt8>) -> [String] {
        bytes.split(whereSeparator: { $0 == 32 || $0 == 9 }).map { String(decoding: $0, as: UTF8.self) }
    }

    private static func printable(_ line: [UInt8]) -> String {
        String(decoding: line.prefix(80), as: UTF8.self)
    }
}
