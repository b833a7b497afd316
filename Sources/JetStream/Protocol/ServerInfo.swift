/// The server's `INFO` message. Unknown fields are ignored; every field is optional on the wire.
public struct ServerInfo: Sendable, Hashable, Decodable {
    public var serverID: String
    public var serverName: String
    public var version: String
    public var proto: Int
    public var host: String
    public var port: Int
    public var headers: Bool
    public var maxPayload: Int
    public var authRequired: Bool
    public var tlsRequired: Bool
    public var tlsAvailable: Bool
    /// Client URLs of the other servers in the cluster (`host:port`).
    public var connectURLs: [String]
    /// Lame-duck mode: the server is about to shut down.
    public var lameDuckMode: Bool
    public var jetStream: Bool
    public var nonce: String?
    public var cluster: String?
    public var clientID: UInt64?

    public init(
        serverID: String = "", serverName: String = "", version: String = "", proto: Int = 1,
        host: String = "", port: Int = 4222, headers: Bool = true, maxPayload: Int = 1_048_576,
        authRequired: Bool = false, tlsRequired: Bool = false, tlsAvailable: Bool = false,
        connectURLs: [String] = [], lameDuckMode: Bool = false, jetStream: Bool = false,
        nonce: String? = nil, cluster: String? = nil, clientID: UInt64? = nil
    ) {
        self.serverID = serverID
        self.serverName = serverName
        self.version = version
        self.proto = proto
        self.host = host
        self.port = port
        self.headers = headers
        self.maxPayload = maxPayload
        self.authRequired = authRequired
        self.tlsRequired = tlsRequired
        self.tlsAvailable = tlsAvailable
        self.connectURLs = connectURLs
        self.lameDuckMode = lameDuckMode
        self.jetStream = jetStream
        self.nonce = nonce
        self.cluster = cluster
        self.clientID = clientID
    }

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id", serverName = "server_name", version, proto, host, port, headers
        case maxPayload = "max_payload", authRequired = "auth_required", tlsRequired = "tls_required"
        case tlsAvailable = "tls_available", connectURLs = "connect_urls", lameDuckMode = "ldm"
        case jetStream = "jetstream", nonce, cluster, clientID = "client_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverID = try c.decodeIfPresent(String.self, forKey: .serverID) ?? ""
        serverName = try c.decodeIfPresent(String.self, forKey: .serverName) ?? ""
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        proto = try c.decodeIfPresent(Int.self, forKey: .proto) ?? 0
        host = try c.decodeIfPresent(String.self, forKey: .host) ?? ""
        port = try c.decodeIfPresent(Int.self, forKey: .port) ?? 0
        headers = try c.decodeIfPresent(Bool.self, forKey: .headers) ?? false
        maxPayload = try c.decodeIfPresent(Int.self, forKey: .maxPayload) ?? 1_048_576
        authRequired = try c.decodeIfPresent(Bool.self, forKey: .authRequired) ?? false
        tlsRequired = try c.decodeIfPresent(Bool.self, forKey: .tlsRequired) ?? false
        tlsAvailable = try c.decodeIfPresent(Bool.self, forKey: .tlsAvailable) ?? false
        connectURLs = try c.decodeIfPresent([String].self, forKey: .connectURLs) ?? []
        lameDuckMode = try c.decodeIfPresent(Bool.self, forKey: .lameDuckMode) ?? false
        jetStream = try c.decodeIfPresent(Bool.self, forKey: .jetStream) ?? false
        nonce = try c.decodeIfPresent(String.self, forKey: .nonce)
        cluster = try c.decodeIfPresent(String.self, forKey: .cluster)
        clientID = try c.decodeIfPresent(UInt64.self, forKey: .clientID)
    }
}
