import Foundation
import JetStreamLog

/// The `log` section of a notary's configuration: where its replicated request log lives.
/// `embedded` (the default) is a SQLite file in the data directory; `jetstream` is a stream on a
/// NATS JetStream cluster shared by every replica of the notary (docs/cluster.md).
public struct LogConfiguration: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case embedded, jetstream }

    public var kind = Kind.embedded
    public var servers: [String] = []
    public var stream = "HAWSER_NOTARY"
    public var replicas = 3
    public var maxEntries: Int64 = 0
    public var maxBytes: Int64 = 0
    public var maxAgeSeconds = 0
    public var duplicateWindowSeconds = 120
    public var appendTimeoutMillis = 10_000
    public var user: String?
    public var password: String?
    public var token: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, servers, stream, replicas, maxEntries, maxBytes, maxAgeSeconds, duplicateWindowSeconds,
             appendTimeoutMillis, user, password, token
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = LogConfiguration()
        if let text = try c.decodeIfPresent(String.self, forKey: .kind) {
            guard let parsed = Kind(rawValue: text) else {
                throw DecodingError.dataCorruptedError(forKey: .kind, in: c,
                                                       debugDescription: "log.kind must be \"embedded\" or \"jetstream\", not \"\(text)\"")
            }
            kind = parsed
        }
        servers = try c.decodeIfPresent([String].self, forKey: .servers) ?? d.servers
        stream = try c.decodeIfPresent(String.self, forKey: .stream) ?? d.stream
        replicas = try c.decodeIfPresent(Int.self, forKey: .replicas) ?? d.replicas
        maxEntries = try c.decodeIfPresent(Int64.self, forKey: .maxEntries) ?? d.maxEntries
        maxBytes = try c.decodeIfPresent(Int64.self, forKey: .maxBytes) ?? d.maxBytes
        maxAgeSeconds = try c.decodeIfPresent(Int.self, forKey: .maxAgeSeconds) ?? d.maxAgeSeconds
        duplicateWindowSeconds = try c.decodeIfPresent(Int.self, forKey: .duplicateWindowSeconds) ?? d.duplicateWindowSeconds
        appendTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .appendTimeoutMillis) ?? d.appendTimeoutMillis
        user = try c.decodeIfPresent(String.self, forKey: .user)
        password = try c.decodeIfPresent(String.self, forKey: .password)
        token = try c.decodeIfPresent(String.self, forKey: .token)
    }

    /// The JetStream log's settings (meaningful when `kind` is `jetstream`).
    public var jetStream: JetStreamLogConfiguration {
        var j = JetStreamLogConfiguration(servers: servers)
        j.stream = stream
        j.replicas = replicas
        j.maxEntries = maxEntries
        j.maxBytes = maxBytes
        j.maxAge = .seconds(maxAgeSeconds)
        j.duplicateWindow = .seconds(duplicateWindowSeconds)
        j.appendTimeout = .milliseconds(appendTimeoutMillis)
        j.user = user
        j.password = password
        j.token = token
        return j
    }

    /// Every invalid value, one sentence each.
    public var problems: [String] {
        switch kind {
        case .embedded:
            let jetStreamOnly = !servers.isEmpty || user != nil || password != nil || token != nil
            return jetStreamOnly ? ["log.servers and credentials apply only to log.kind \"jetstream\""] : []
        case .jetstream:
            return jetStream.problems(prefix: "log.")
        }
    }
}
