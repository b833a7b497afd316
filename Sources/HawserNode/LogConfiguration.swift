import Foundation
import JetStreamLog
import Notary

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
    /// This replica's id among `members` (jetstream only).
    public var replicaId: String?
    /// The ids of every replica of this notary, in order of preference as sequencer; the same
    /// list on every replica (jetstream only). A majority of them confirms every outcome.
    public var members: [String] = []

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, servers, stream, replicas, maxEntries, maxBytes, maxAgeSeconds, duplicateWindowSeconds,
             appendTimeoutMillis, user, password, token, replicaId, members
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
        replicaId = try c.decodeIfPresent(String.self, forKey: .replicaId)
        members = try c.decodeIfPresent([String].self, forKey: .members) ?? d.members
    }

    /// Who the replicas are and which one this is (`.alone` for the embedded log).
    public var membership: ReplicaMembership {
        guard kind == .jetstream, let replicaId else { return .alone }
        return ReplicaMembership(me: replicaId, members: members)
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
            // The stream's settings do nothing here, but `notary init` writes them, and a value
            // out of range is a mistake to hear about before the log is moved to JetStream.
            let jetStreamOnly = !servers.isEmpty || user != nil || password != nil || token != nil || replicaId != nil || !members.isEmpty
            return (jetStreamOnly ? ["log.servers, log.user, log.password, log.token, log.replicaId and log.members apply only to log.kind \"jetstream\""] : [])
                + jetStream.streamProblems(prefix: "log.")
        case .jetstream:
            return jetStream.problems(prefix: "log.") + membershipProblems
        }
    }

    private var membershipProblems: [String] {
        var out = [String]()
        func isToken(_ id: String) -> Bool {
            !id.isEmpty && id.utf8.count <= 64 && id.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != 46 && $0 != 42 && $0 != 62 }
        }
        if members.isEmpty { out.append("log.members must list the ids of every replica of this notary (the same list on each)") }
        for id in members where !isToken(id) {
            out.append("log.members: `\(id)` is not a replica id (1-64 printable characters without spaces, `.`, `*` or `>`)")
        }
        if Set(members).count != members.count { out.append("log.members must not name a replica twice") }
        guard let replicaId else { return out + ["log.replicaId must say which of log.members this replica is"] }
        if !members.isEmpty && !members.contains(replicaId) { out.append("log.replicaId `\(replicaId)` is not one of log.members") }
        return out
    }
}
