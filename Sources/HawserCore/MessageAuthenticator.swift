import Crypto

/// HMAC-SHA-256 with a key derived (HKDF) from a private key for one purpose. Every holder of the
/// private key derives the same key, nobody else can: the replicas of one notary, which share the
/// notary's key, authenticate what they tell each other with it at a fraction of a signature's cost.
public struct MessageAuthenticator: Sendable {
    private let key: SymmetricKey

    public init(deriving signingKey: SigningKey, purpose: String) {
        key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: signingKey.seed),
                                     info: Array("hawser \(purpose)".utf8), outputByteCount: 32)
    }

    /// The 32-byte code of `message`.
    public func code(_ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }

    /// Whether `code` is `message`'s code (compared in constant time).
    public func isValid(_ code: [UInt8], for message: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: message, using: key)
    }
}
