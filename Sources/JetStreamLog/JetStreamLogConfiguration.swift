import JetStream

/// Where and how the notary's log lives on JetStream. `problems` validates it at start-up.
public struct JetStreamLogConfiguration: Sendable, Equatable {
    /// NATS server URLs (`nats://host:port`, `tls://host:port`); more are learnt from the cluster.
    public var servers: [String]
    /// The stream's name; all replicas of one notary use the same one.
    public var stream = "HAWSER_NOTARY"
    /// Copies of each entry JetStream keeps (an entry is acknowledged once a majority stored it).
    public var replicas = 3
    /// Retention: the stream keeps at most this many entries (0: unbounded). Older ones are removed;
    /// a replica that still needs them must be restored from a snapshot.
    public var maxEntries: Int64 = 0
    /// Retention: at most this many bytes of entries (0: unbounded).
    public var maxBytes: Int64 = 0
    /// Retention: entries older than this are removed (zero: kept forever).
    public var maxAge: Duration = .zero
    /// How long JetStream remembers a message id, so that an append retried after a lost
    /// acknowledgement is not stored twice.
    public var duplicateWindow: Duration = .seconds(120)
    /// How long one append may take, retries included, before the request fails with `timeout`.
    public var appendTimeout: Duration = .seconds(10)
    public var user: String?
    public var password: String?
    public var token: String?
    /// The client name servers show in monitoring.
    public var clientName = "hawser-notary"

    public init(servers: [String]) { self.servers = servers }

    /// The one subject the stream captures.
    public var subject: String { "hawser.log.\(stream)" }

    /// One sentence per invalid value (prefixed with `prefix`, e.g. `log.`); empty when valid.
    public func problems(prefix: String = "") -> [String] {
        var out = [String]()
        if servers.isEmpty { out.append("\(prefix)servers must name at least one NATS server") }
        for server in servers where server.contains(" ") || (try? ServerAddress(server)) == nil {
            out.append("\(prefix)servers: `\(server)` is not a server URL: nats://host[:port] or tls://host[:port] (port 1-65535, 4222 if omitted)")
        }
        out += streamProblems(prefix: prefix)
        if (user == nil) != (password == nil) { out.append("\(prefix)user and \(prefix)password go together") }
        if token != nil && user != nil { out.append("\(prefix)token and \(prefix)user are alternatives; give one") }
        return out
    }

    /// The longest retention or duplicate window taken: 100 years.
    static let longestDuration = Duration.seconds(3_155_760_000)

    /// The stream's own settings (name, replicas, retention, duplicate window, append time-out),
    /// which are checked wherever they are written, also beside an embedded log.
    public func streamProblems(prefix: String = "") -> [String] {
        var out = [String]()
        if stream.isEmpty || stream.utf8.contains(where: { $0 <= 32 || $0 == 46 || $0 == 42 || $0 == 62 || $0 == 127 }) {
            out.append("\(prefix)stream must be a non-empty name without spaces, `.`, `*` or `>`")
        }
        if ![1, 3, 5].contains(replicas) { out.append("\(prefix)replicas must be 1, 3 or 5") }
        if maxEntries < 0 { out.append("\(prefix)maxEntries must not be negative (0: unbounded)") }
        if maxBytes < 0 { out.append("\(prefix)maxBytes must not be negative (0: unbounded)") }
        if maxAge < .zero { out.append("\(prefix)maxAgeSeconds must not be negative (0: forever)") }
        // JetStream carries durations as 64-bit nanoseconds (about 292 years); a longer one
        // crashed the replica as it created the stream.
        if maxAge > Self.longestDuration { out.append("\(prefix)maxAgeSeconds must be at most 3155760000 (100 years)") }
        if duplicateWindow > Self.longestDuration {
            out.append("\(prefix)duplicateWindowSeconds must be at most 3155760000 (100 years)")
        }
        if maxAge > .zero && maxAge < duplicateWindow {
            out.append("\(prefix)maxAgeSeconds must be at least the duplicate window (\(duplicateWindow))")
        }
        if duplicateWindow < .seconds(1) { out.append("\(prefix)duplicateWindowSeconds must be at least 1") }
        if appendTimeout < .milliseconds(100) || appendTimeout > .seconds(3_600) {
            out.append("\(prefix)appendTimeoutMillis must be 100...3600000 (an hour)")
        }
        return out
    }
}
