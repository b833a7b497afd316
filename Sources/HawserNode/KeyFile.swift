import Foundation
import HawserCore
import Logging

/// A party's or notary's Ed25519 key on disk: `{"name": ..., "seed": "<base64 of 32 bytes>"}`,
/// readable by its owner only.
public struct KeyFile: Codable, Sendable {
    public var name: String
    public var seed: String

    public init(name: String, key: SigningKey) {
        self.name = name
        self.seed = Data(key.seed).base64EncodedString()
    }

    public var key: SigningKey? { Data(base64Encoded: seed).flatMap { SigningKey(seed: [UInt8]($0)) } }

    /// The key in the file at `path`. A file others can read is taken with a warning (ssh would
    /// refuse it; a refusal here would stop set-ups that copied their keys): the seed is the
    /// party's or the notary's signature.
    /// `option`, the configuration option that names the file, begins a problem's sentence.
    public static func load(_ path: String, option: String? = nil) throws -> (name: String, key: SigningKey) {
        let said = option.map { "\($0): " } ?? ""
        let data: Data
        do { data = try ConfigurationFile.contents(of: path, what: "key file") } catch let error as ConfigurationError {
            throw ConfigurationError(error.problems.map { said + $0 })
        }
        guard let file = try? JSONDecoder().decode(KeyFile.self, from: data), let key = file.key else {
            throw ConfigurationError(["\(said)key file \(path) is not {\"name\": ..., \"seed\": <base64 of 32 bytes>}"])
        }
        if let exposure = exposure(of: path) { Logger(label: "hawser.keys").warning("\(exposure)") }
        return (file.name, key)
    }

    /// A sentence if the file at `path` can be read or written by anyone but its owner.
    public static func exposure(of path: String) -> String? {
        guard let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int,
              mode & 0o077 != 0 else { return nil }
        return "key file \(path) is open to others than its owner (mode \(String(mode & 0o777, radix: 8))): anyone who reads it can sign as its party; chmod 600 it"
    }

    /// Writes the file with mode 0600; refuses to overwrite an existing key.
    public func save(_ path: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw ConfigurationError(["\(path) already exists; refusing to overwrite a key"])
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard FileManager.default.createFile(atPath: path, contents: try encoder.encode(self) + Data("\n".utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError(["cannot write key file \(path)"])
        }
    }
}
