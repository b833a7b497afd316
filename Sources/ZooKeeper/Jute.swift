import NIOCore

/// A malformed jute record or frame.
struct JuteDecodingError: Error, Hashable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }

    static let truncated = JuteDecodingError("record truncated")
}

// Jute, ZooKeeper's record serialisation: big-endian integers, one-byte booleans,
// `buffer`/`ustring`/`vector` prefixed with a signed 32-bit count where -1 means null.
extension ByteBuffer {
    mutating func writeJuteInt(_ value: Int32) { writeInteger(value, endianness: .big) }
    mutating func writeJuteLong(_ value: Int64) { writeInteger(value, endianness: .big) }
    mutating func writeJuteBool(_ value: Bool) { writeInteger(UInt8(value ? 1 : 0)) }

    mutating func writeJuteBuffer(_ bytes: [UInt8]?) {
        guard let bytes else { writeJuteInt(-1); return }
        writeJuteInt(Int32(bytes.count))
        writeBytes(bytes)
    }

    mutating func writeJuteString(_ string: String?) {
        guard let string else { writeJuteInt(-1); return }
        writeJuteInt(Int32(string.utf8.count))
        writeString(string)
    }

    mutating func writeJuteVector<Element>(_ elements: [Element]?, _ write: (inout ByteBuffer, Element) -> Void) {
        guard let elements else { writeJuteInt(-1); return }
        writeJuteInt(Int32(elements.count))
        for element in elements { write(&self, element) }
    }

    mutating func readJuteInt() throws -> Int32 {
        guard let value = readInteger(endianness: .big, as: Int32.self) else { throw JuteDecodingError.truncated }
        return value
    }

    mutating func readJuteLong() throws -> Int64 {
        guard let value = readInteger(endianness: .big, as: Int64.self) else { throw JuteDecodingError.truncated }
        return value
    }

    mutating func readJuteBool() throws -> Bool {
        guard let value = readInteger(as: UInt8.self) else { throw JuteDecodingError.truncated }
        return value != 0
    }

    /// A `buffer`; nil when the peer wrote -1.
    mutating func readJuteBuffer() throws -> [UInt8]? {
        let count = try readJuteInt()
        if count < 0 { return nil }
        guard let bytes = readBytes(length: Int(count)) else { throw JuteDecodingError.truncated }
        return bytes
    }

    /// A `ustring`; nil when the peer wrote -1.
    mutating func readJuteString() throws -> String? {
        let count = try readJuteInt()
        if count < 0 { return nil }
        guard let string = readString(length: Int(count)) else { throw JuteDecodingError.truncated }
        return string
    }

    /// A `vector`; nil when the peer wrote -1. The count is checked against the bytes left
    /// (every element takes at least one byte) so garbage cannot force a huge allocation.
    mutating func readJuteVector<Element>(_ read: (inout ByteBuffer) throws -> Element) throws -> [Element]? {
        let count = try readJuteInt()
        if count < 0 { return nil }
        guard Int(count) <= readableBytes else { throw JuteDecodingError.truncated }
        var elements: [Element] = []
        elements.reserveCapacity(Int(count))
        for _ in 0..<count { elements.append(try read(&self)) }
        return elements
    }
}
