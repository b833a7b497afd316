import NIOCore

/// The `http` section of the notary's and the node's configuration: how many connections the HTTP
/// API holds open, and how long a peer may take to send a request before the server closes its
/// connection (docs/configuration.md, docs/node.md).
public struct HTTPSettings: Codable, Sendable, Equatable {
    /// Most connections open at once (`ListenerCap`).
    public var maxConnections = 4_096
    /// A request head (request line and headers) must arrive within this time of its first byte,
    /// or of the connection's accept for its first request.
    public var headerTimeoutMillis = 10_000
    /// A request body must arrive within this time of its head.
    public var bodyTimeoutMillis = 30_000
    /// A kept-alive connection with no request under way is closed after this time. Longer than
    /// the HTTP clients' own idle timeout (60 s), so that they close first and never send on a
    /// connection the server is closing.
    public var idleTimeoutMillis = 75_000

    /// After answering a request that asked to close (or that could not be parsed), the server
    /// reads and drops input for this long at most, so that the peer reads the answer before the
    /// connection is closed. Fixed.
    static let linger = TimeAmount.seconds(2)
    static let range = 100...3_600_000

    enum CodingKeys: String, CodingKey, CaseIterable { case maxConnections, headerTimeoutMillis, bodyTimeoutMillis, idleTimeoutMillis }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = HTTPSettings()
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? d.maxConnections
        headerTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .headerTimeoutMillis) ?? d.headerTimeoutMillis
        bodyTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .bodyTimeoutMillis) ?? d.bodyTimeoutMillis
        idleTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .idleTimeoutMillis) ?? d.idleTimeoutMillis
    }

    /// Every invalid value, one sentence each, naming the option under `section`.
    func problems(section: String) -> [String] {
        ListenerCap.problems(maxConnections, option: "\(section).maxConnections")
            + [("headerTimeoutMillis", headerTimeoutMillis), ("bodyTimeoutMillis", bodyTimeoutMillis), ("idleTimeoutMillis", idleTimeoutMillis)]
            .filter { !Self.range.contains($0.1) }
            .map { "\(section).\($0.0) must be \(Self.range.lowerBound)...\(Self.range.upperBound) (milliseconds)" }
    }

    var limits: ConnectionDeadlines.Limits {
        .init(head: .milliseconds(Int64(headerTimeoutMillis)), body: .milliseconds(Int64(bodyTimeoutMillis)),
              idle: .milliseconds(Int64(idleTimeoutMillis)), linger: Self.linger)
    }
}
