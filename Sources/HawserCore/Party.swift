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
