import Crypto
import _CryptoExtras
import Foundation
import HawserCore

/// What an RPC user may do.
public enum RPCPermission: String, Codable, Sendable, CaseIterable {
    /// Start flows (any registered flow).
    case startFlow
    /// Read flows, their progress and results.
    case readFlows
    /// Kill and resume flows.
    case manageFlows
    /// Query the vault.
    case readVault
    /// Switch draining mode.
    case admin
    /// Everything above.
    case all

    /// A name that is none of the permissions is refused naming those there are.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let permission = Self(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "`\(name.prefix(100))` is not a permission: one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = permission
    }
}

/// One RPC user. The password is stored only as a PBKDF2-HMAC-SHA256 hash
/// (`pbkdf2-sha256:<iterations>:<salt base64>:<hash base64>`, made by `hawser node hash-password`).
public struct RPCUser: Codable, Sendable, Equatable {
    public var username: String
    public var passwordHash: String
    public var permissions: [RPCPermission]

    public init(username: String, passwordHash: String, permissions: [RPCPermission]) {
        self.username = username
        self.passwordHash = passwordHash
        self.permissions = permissions
    }

    public func may(_ permission: RPCPermission) -> Bool {
        permissions.contains(.all) || permissions.contains(permission)
    }

    var problems: [String] {
        var out = [String]()
        if username.isEmpty || username.contains(":") { out.append("rpcUsers: a username must be non-empty and have no `:`") }
        if PasswordHash(passwordHash) == nil {
            out.append("rpcUsers: the passwordHash of `\(username)` is not pbkdf2-sha256:<iterations>:<salt>:<hash> with 1 to \(PasswordHash.maxIterations) iterations, a salt of at least 8 bytes and a 32-byte hash (use `hawser node hash-password`)")
        }
        if permissions.isEmpty { out.append("rpcUsers: `\(username)` has no permissions") }
        return out
    }
}

/// A PBKDF2-HMAC-SHA256 password hash with a random salt.
public struct PasswordHash: Sendable, Equatable {
    /// OWASP's figure for PBKDF2-HMAC-SHA256 (2023). Verifying costs a few hundred milliseconds,
    /// paid once per credential: `RPCAuthenticator` remembers the ones it has verified, checks
    /// on threads of its own, and limits failed attempts.
    public static let defaultIterations = 600_000
    /// More would take minutes to verify, and the hash function takes at most 2^32 - 1.
    public static let maxIterations = 10_000_000
    static let scheme = "pbkdf2-sha256"
    public var iterations: Int
    public var salt: [UInt8]
    public var hash: [UInt8]

    init(iterations: Int, salt: [UInt8], hash: [UInt8]) {
        (self.iterations, self.salt, self.hash) = (iterations, salt, hash)
    }

    /// A hash no password matches (a random one), checked for a user name that is not configured
    /// so that a wrong name takes as long as a wrong password: `iterations` those of the users.
    static func decoy(iterations: Int) -> PasswordHash {
        PasswordHash(iterations: iterations, salt: (0..<16).map { _ in .random(in: .min ... .max) },
                     hash: (0..<32).map { _ in .random(in: .min ... .max) })
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.scheme, let iterations = Int(parts[1]), (1...Self.maxIterations).contains(iterations),
              let salt = Data(base64Encoded: String(parts[2])), salt.count >= 8,
              let hash = Data(base64Encoded: String(parts[3])), hash.count == 32 else { return nil }
        self.iterations = iterations
        self.salt = [UInt8](salt)
        self.hash = [UInt8](hash)
    }

    /// Hashes `password` with a fresh random salt.
    public static func make(_ password: String, iterations: Int = defaultIterations) -> String {
        let salt = (0..<16).map { _ in UInt8.random(in: .min ... .max) }
        let hash = derive(password, salt: salt, iterations: iterations)
        return "\(scheme):\(iterations):\(Data(salt).base64EncodedString()):\(Data(hash).base64EncodedString())"
    }

    public func verify(_ password: String) -> Bool {
        let candidate = Self.derive(password, salt: salt, iterations: iterations)
        // Constant-time comparison.
        return zip(candidate, hash).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0 && candidate.count == hash.count
    }

    static func derive(_ password: String, salt: [UInt8], iterations: Int) -> [UInt8] {
        // The checked variant refuses fewer than 210,000 rounds; tests use fewer to stay quick.
        let key = try? KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256,
                                                    outputByteCount: 32, unsafeUncheckedRounds: max(iterations, 1))
        return key?.withUnsafeBytes { [UInt8]($0) } ?? []
    }
}
