import Crypto
import Foundation

/// An Ed25519 public key, 32 raw bytes.
public struct PublicKey: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    public let rawBytes: [UInt8]

    public init?(rawBytes: [UInt8]) {
        guard rawBytes.count == Self.byteCount,
              (try? Curve25519.Signing.PublicKey(rawRepresentation: rawBytes)) != nil else { return nil }
        self.rawBytes = rawBytes
    }

    /// Standard base64 (RFC 4648 with padding), the key's text form.
    public var base64: String { Data(rawBytes).base64EncodedString() }

    public init?(base64: String) {
        guard let data = Data(base64Encoded: base64) else { return nil }
        self.init(rawBytes: [UInt8](data))
    }

    public var description: String { base64 }

    /// Whether the key is a point of small order (a multiple of it by 8 is the identity), in any
    /// of its encodings. A signature under such a key verifies for a share of all messages
    /// without any private key (an all-zero key, a plausible placeholder, is one), and grinding
    /// makes one certain: no party, node or notary may have one (libsodium refuses them too).
    public var hasSmallOrder: Bool {
        var bytes = rawBytes
        bytes[31] &= 0x7f  // the sign of x: either sign of each point
        return Self.smallOrderPoints.contains(bytes)
    }

    /// The encodings of the eight points of small order, sign bit cleared: y = 0, 1, the two of
    /// order 8, p − 1, and y = p and p + 1 (non-canonical spellings of 0 and 1).
    private static let smallOrderPoints: Set<[UInt8]> = [
        [UInt8](repeating: 0, count: 32),
        [1] + [UInt8](repeating: 0, count: 31),
        [0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
         0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05],
        [0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
         0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a],
        [0xec] + [UInt8](repeating: 0xff, count: 30) + [0x7f],
        [0xed] + [UInt8](repeating: 0xff, count: 30) + [0x7f],
        [0xee] + [UInt8](repeating: 0xff, count: 30) + [0x7f],
    ]

    /// Verifies an Ed25519 signature. Prefer `Verifier` on hot paths: it parses the key once.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        Verifier(self).isValidSignature(signature, for: message)
    }
}

/// A parsed public key, ready to verify many signatures.
public struct Verifier: Sendable {
    public let key: PublicKey
    private let parsed: Curve25519.Signing.PublicKey

    public init(_ key: PublicKey) {
        self.key = key
        // PublicKey's initialiser already proved the bytes parse.
        self.parsed = try! Curve25519.Signing.PublicKey(rawRepresentation: key.rawBytes)
    }

    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        signature.count == 64 && parsed.isValidSignature(signature, for: message)
    }
}

/// An Ed25519 private key with its public key.
public struct SigningKey: Sendable {
    private let key: Curve25519.Signing.PrivateKey
    public let publicKey: PublicKey

    public init() { self.init(key: Curve25519.Signing.PrivateKey()) }

    /// From the 32-byte seed; nil for any other length.
    public init?(seed: [UInt8]) {
        guard seed.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else { return nil }
        self.init(key: key)
    }

    private init(key: Curve25519.Signing.PrivateKey) {
        self.key = key
        self.publicKey = PublicKey(rawBytes: [UInt8](key.publicKey.rawRepresentation))!
    }

    /// The 32-byte seed, which is the key's storage form. Keep it secret.
    public var seed: [UInt8] { [UInt8](key.rawRepresentation) }

    /// An Ed25519 signature (64 bytes, RFC 8032).
    public func sign(_ message: [UInt8]) -> [UInt8] {
        // Signing only fails if the platform's RNG or key is broken; neither is recoverable.
        [UInt8](try! key.signature(for: message))
    }
}

/// A participant of the network: a name and the Ed25519 key it signs with.
public struct Party: Hashable, Sendable {
    public var name: String
    public var publicKey: PublicKey

    public init(name: String, publicKey: PublicKey) {
        self.name = name
        self.publicKey = publicKey
    }
}
