import Foundation
import Crypto

/// A SHA-256 digest: 32 bytes held inline (no heap allocation), ordered as the big-endian bytes are.
public struct SecureHash: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    // Four big-endian words, so that tuple order is byte order.
    let w0, w1, w2, w3: UInt64

    public static let zero = SecureHash(w0: 0, w1: 0, w2: 0, w3: 0)

    init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }

    /// Wraps exactly 32 bytes; returns nil for any other length.
    /// (Read as four words from contiguous memory: ids arrive as protobuf `Data` on the hot path,
    /// where iterating byte by byte cost more than the rest of decoding a request.)
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard bytes.count == Self.byteCount else { return nil }
        let read = { (buffer: UnsafeBufferPointer<UInt8>) -> SecureHash in
            let raw = UnsafeRawBufferPointer(buffer)
            func word(_ i: Int) -> UInt64 { UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
            return SecureHash(w0: word(0), w1: word(1), w2: word(2), w3: word(3))
        }
        self = bytes.withContiguousStorageIfAvailable(read) ?? Array(bytes).withUnsafeBufferPointer(read)
    }

    /// The SHA-256 digest of `data`.
    public static func sha256<Bytes: DataProtocol>(_ data: Bytes) -> SecureHash {
        SecureHash(digest: SHA256.hash(data: data))
    }

    init(digest: SHA256.Digest) {
        self = digest.withUnsafeBytes { SecureHash(bytes: $0)! }
    }

    /// Feeds the 32 bytes to `hasher` without allocating.
    public func hash(into hasher: inout SHA256) {
        var words = (w0.bigEndian, w1.bigEndian, w2.bigEndian, w3.bigEndian)
        withUnsafeBytes(of: &words) { hasher.update(bufferPointer: $0) }
    }

    public var bytes: [UInt8] {
        var words = (w0.bigEndian, w1.bigEndian, w2.bigEndian, w3.bigEndian)
        return withUnsafeBytes(of: &words) { Array($0) }
    }

    /// Lower-case hexadecimal, 64 characters.
    public var hex: String { Hex.encode(bytes) }

    /// Parses 64 hexadecimal characters (either case).
    public init?(hex: String) {
        guard hex.utf8.count == 64, let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    public var description: String { hex }

    public static func < (a: SecureHash, b: SecureHash) -> Bool {
        (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
    }
}

/// Hexadecimal text form for hashes, keys and signatures.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var chars = [UInt8]()
        for byte in bytes {
            chars.append(digits[Int(byte >> 4)])
            chars.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: chars, as: UTF8.self)
    }

    /// Decodes an even number of hexadecimal characters; nil on anything else.
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
