import NIOCore

/// NATS message headers: an ordered, multi-valued list of fields plus the optional status line of
/// the `NATS/1.0` header block (for example `503` no responders or `408 Request Timeout`).
///
/// Field names are matched case-insensitively on lookup and written exactly as given.
public struct NATSHeaders: Sendable, Hashable, Sequence {
    /// One header field.
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The status code from the header line (`NATS/1.0 503`), if any.
    public var status: UInt16?
    /// The text after the status code (`Request Timeout`), if any.
    public var statusDescription: String?
    /// All fields in order.
    public private(set) var fields: [Field]

    public init(status: UInt16? = nil, statusDescription: String? = nil, _ fields: [(String, String)] = []) {
        self.status = status
        self.statusDescription = statusDescription
        self.fields = fields.map { Field(name: $0.0, value: $0.1) }
    }

    public var isEmpty: Bool { fields.isEmpty && status == nil }

    /// The first value of `name`, or `nil`.
    public subscript(name: String) -> String? {
        get { fields.first { $0.name.caseInsensitiveEquals(name) }?.value }
        set {
            fields.removeAll { $0.name.caseInsensitiveEquals(name) }
            if let newValue { fields.append(Field(name: name, value: newValue)) }
        }
    }

    /// All values of `name`, in order.
    public func values(for name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    /// Adds a value without removing existing values of the same name.
    public mutating func append(_ value: String, for name: String) {
        fields.append(Field(name: name, value: value))
    }

    public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }
}

/// Well-known header names.
public enum NATSHeaderName {
    public static let msgID = "Nats-Msg-Id"
    public static let expectedStream = "Nats-Expected-Stream"
    public static let expectedLastSequence = "Nats-Expected-Last-Sequence"
    public static let expectedLastSubjectSequence = "Nats-Expected-Last-Subject-Sequence"
    public static let expectedLastMsgID = "Nats-Expected-Last-Msg-Id"
    public static let rollup = "Nats-Rollup"
    public static let kvOperation = "KV-Operation"
    public static let lastConsumer = "Nats-Last-Consumer"
    public static let lastStream = "Nats-Last-Stream"
    public static let consumerStalled = "Nats-Consumer-Stalled"
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = self.utf8, b = other.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            let lx = (x >= 65 && x <= 90) ? x + 32 : x
            let ly = (y >= 65 && y <= 90) ? y + 32 : y
            if lx != ly { return false }
        }
        return true
    }
}

// MARK: - Wire form

enum HeaderCoding {
    static let versionLine = Array("NATS/1.0".utf8)

    /// Validates that a name or value can be carried on the wire.
    static func validate(_ headers: NATSHeaders) throws(NATSError) {
        for field in headers.fields {
            if field.name.isEmpty || field.name.utf8.contains(where: { $0 == 58 || $0 <= 32 || $0 == 127 }) {
                throw NATSError.invalidHeader("invalid header name \(field.name.debugDescription)")
            }
            if field.value.utf8.contains(where: { $0 == 13 || $0 == 10 }) {
                throw NATSError.invalidHeader("header value for \(field.name) contains CR or LF")
            }
        }
    }

    /// Encoded size in bytes, including the trailing blank line.
    static func encodedSize(_ headers: NATSHeaders) -> Int {
        var size = versionLine.count + 2
        if let status = headers.status {
            size += 1 + String(status).utf8.count
            if let d = headers.statusDescription, !d.isEmpty { size += 1 + d.utf8.count }
        }
        for f in headers.fields { size += f.name.utf8.count + 2 + f.value.utf8.count + 2 }
        return size + 2
    }

    static func write(_ headers: NATSHeaders, into buffer: inout ByteBuffer) {
        buffer.writeBytes(versionLine)
        if let status = headers.status {
            buffer.writeString(" \(status)")
            if let d = headers.statusDescription, !d.isEmpty { buffer.writeString(" \(d)") }
        }
        buffer.writeStaticString("\r\n")
        for f in headers.fields {
            buffer.writeString(f.name)
            buffer.writeStaticString(": ")
            buffer.writeString(f.value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// Parses a header block (`NATS/1.0[ status[ description]]\r\n(name: value\r\n)*\r\n`).
    /// Lines without a colon are ignored; a block not starting with `NATS/` is an error.
    static func parse(_ bytes: ByteBufferView) throws(ProtocolParser.Error) -> NATSHeaders {
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)[...]
        guard let first = lines.popFirst(), first.hasPrefix("NATS/") else {
            throw .invalidHeaders(String(text.prefix(40)))
        }
        var headers = NATSHeaders()
        // Status line: "NATS/1.0 503" or "NATS/1.0 408 Request Timeout"
        let statusPart = first.drop { $0 != " " }.drop { $0 == " " }
        if !statusPart.isEmpty {
            let code = statusPart.prefix { $0 != " " }
            guard let value = UInt16(code) else { throw .invalidHeaders(String(first)) }
            headers.status = value
            let description = statusPart.dropFirst(code.count).drop { $0 == " " }
            if !description.isEmpty { headers.statusDescription = String(description) }
        }
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingSpaces()
            let value = line[line.index(after: colon)...].trimmingSpaces()
            if name.isEmpty { continue }
            headers.append(String(value), for: String(name))
        }
        return headers
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
