/// How a `ZooKeeperClient` connects.
public struct ZooKeeperConfiguration: Sendable {
    /// The servers of the ensemble.
    public var servers: [ServerAddress]
    /// The session timeout to ask for. The server clamps it (by default to 2–20 ticks). Pings go out
    /// every third of the negotiated timeout; a connection silent for two thirds of it is dropped.
    public var sessionTimeout: Duration = .seconds(10)
    /// How long `connect` waits for the first session before throwing `connectionLoss`.
    public var initialConnectTimeout: Duration = .seconds(15)
    /// The pause after every server failed in a row, before trying them again.
    public var reconnectDelay: Duration = .milliseconds(100)
    /// Incoming frames larger than this are treated as a protocol error.
    public var maxFrameSize: Int = 4 << 20
    /// Try the servers in a random order (spreads clients across the ensemble).
    public var shuffleServers: Bool = true
    /// Resume an existing session instead of creating a new one.
    public var session: SessionCredentials? = nil

    public init(servers: [ServerAddress]) {
        self.servers = servers
    }

    /// - Parameter connectString: `"host:port,host:port,..."`.
    public init(connectString: String) throws(ZooKeeperError) {
        self.servers = try ServerAddress.parse(connectString: connectString)
    }
}
