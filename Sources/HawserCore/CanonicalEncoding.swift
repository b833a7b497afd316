/// Hawser's canonical binary encoding: the exact bytes that are hashed and signed.
///
/// One value has exactly one encoding (see docs/notary-protocol.md): integers are fixed-width
/// big-endian, variable-length values carry a `u32` length or count, optionals a one-byte flag.
public struct CanonicalWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 128) { bytes.reserveCapacity(capacity) }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u32(_ v: UInt32) { appendBigEndian(UInt64(v), width: 4) }
    public mutating func u64(_ v: UInt64) { appendBigEndian(v, width: 8) }
    public mutating func i64(_ v: Int64) { appendBigEndian(UInt64(bitPattern: v), width: 8) }
    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }

    /// Fixed-size bytes whose length the reader knows (hashes, keys): no length prefix.
    public mutating func raw(_ v: [UInt8]) { bytes.append(contentsOf: v) }
    /// Variable-size bytes: `u32` length, then the bytes.
    public mutating func lengthPrefixed(_ v: [UInt8]) { u32(UInt32(v.count)); bytes.append(contentsOf: v) }
    /// UTF-8 text: `u32` byte length, then the bytes.
    public mutating func string(_ v: String) { lengthPrefixed(Array(v.utf8)) }

    public mutating func hash(_ v: SecureHash) {
        for word in [v.w0, v.w1, v.w2, v.w3] { appendBigEndian(word, width: 8) }
    }

    public mutating func stateRef(_ v: StateRef) { hash(v.txId); u32(v.index) }
    public mutating func instant(_ v: Instant) { i64(v.microsecondsSinceEpoch) }

    public mutating func optional<T>(_ v: T?, _ write: (inout CanonicalWriter, T) -> Void) {
        if let v { u8(1); write(&self, v) } else { u8(0) }
    }

    public mutating func list<T>(_ items: [T], _ write: (inout CanonicalWriter, T) -> Void) {
        u32(UInt32(items.count))
        for item in items { write(&self, item) }
    }

    private mutating func appendBigEndian(_ v: UInt64, width: Int) {
        for shift in stride(from: (width - 1) * 8, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift)))
        }
    }
}

public struct CanonicalDecodingError: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reads what `CanonicalWriter` wrote; every read is bounds-checked.
public struct CanonicalReader {
    private let bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset == bytes.count }

    public func expectEnd() throws {
        guard isAtEnd else { throw CanonicalDecodingError("\(bytes.count - offset) trailing bytes") }
    }

    public mutating func u8() throws -> UInt8 { UInt8(try bigEndian(width: 1)) }
    public mutating func u32() throws -> UInt32 { UInt32(try bigEndian(width: 4)) }
    public mutating func u64() throws -> UInt64 { try bigEndian(width: 8) }
    public mutating func i64() throws -> Int64 { Int64(bitPattern: try bigEndian(width: 8)) }

    public mutating func bool() throws -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let v: throw CanonicalDecodingError("invalid boolean \(v)")
        }
    }

    public mutating func raw(_ count: Int) throws -> [UInt8] {
        guard count <= bytes.count - offset else { throw CanonicalDecodingError("truncated: wanted \(count) bytes") }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    public mutating func lengthPrefixed() throws -> [UInt8] { try raw(Int(try u32())) }

    public mutating func string() throws -> String {
        guard let s = String(validating: try lengthPrefixed(), as: UTF8.self) else {
            throw CanonicalDecodingError("invalid UTF-8")
        }
        return s
    }

    public mutating func hash() throws -> SecureHash {
        SecureHash(w0: try u64(), w1: try u64(), w2: try u64(), w3: try u64())
    }

    public mutating func stateRef() throws -> StateRef { StateRef(txId: try hash(), index: try u32()) }
    public mutating func instant() throws -> Instant { Instant(microsecondsSinceEpoch: try i64()) }

    public mutating func optional<T>(_ read: (inout CanonicalReader) throws -> T) throws -> T? {
        try bool() ? try read(&self) : nil
    }

    public mutating func list<T>(_ read: (inout CanonicalReader) throws -> T) throws -> [T] {
        let count = Int(try u32())
        // Every element takes at least one byte: refuse counts the input cannot hold.
        guard count <= bytes.count - offset else { throw CanonicalDecodingError("list count \(count) exceeds input") }
        var items = [T]()
        items.reserveCapacity(count)
        for _ in 0..<count { items.append(try read(&self)) }
        return items
    }

    private mutating func bigEndian(width: Int) throws -> UInt64 {
        guard width <= bytes.count - offset else { throw CanonicalDecodingError("truncated: wanted \(width) bytes") }
        var v: UInt64 = 0
        for k in offset..<(offset + width) { v = v << 8 | UInt64(bytes[k]) }
        offset += width
        return v
    }
}
