import Logging
import NIOCore
import NIOSSL

/// Options of a ``NATSClient``.
public struct NATSOptions: Sendable {
    /// Server URLs: `nats://host:port`, `tls://host:port`, `nats://user:pass@host:port` or `host:port`.
    public var servers: [String]
    /// The client name the server shows in monitoring.
    public var name: String?
    public var user: String?
    public var password: String?
    public var token: String?
    /// TLS settings; when set, every connection is upgraded to TLS after `INFO`. Servers that
    /// require TLS are upgraded with a default configuration even when this is `nil`.
    public var tls: TLSConfiguration?
    /// Limit for opening the socket and for the `INFO`/`CONNECT`/`PONG` handshake, each.
    public var connectTimeout: Duration
    public var reconnect: ReconnectPolicy
    /// Shuffle the server list (and discovered servers) so clients spread over the cluster.
    public var randomizeServers: Bool
    /// Do not add the servers a cluster announces in `INFO.connect_urls`.
    public var ignoreDiscoveredServers: Bool
    /// Keep retrying when no server is reachable at the first connect.
    public var retryOnFailedInitialConnect: Bool
    /// How often to ping the server; after `maxPingsOutstanding` unanswered pings the connection
    /// is considered stale and replaced.
    public var pingInterval: Duration
    public var maxPingsOutstanding: Int
    /// Bytes of publishes kept while disconnected and sent after reconnecting.
    public var reconnectBufferSize: Int
    /// Messages a subscription buffers before it drops new ones (slow consumer).
    public var subscriptionBufferLimit: Int
    /// Receive your own publishes on matching subscriptions.
    public var echo: Bool
    /// Prefix of reply subjects for requests.
    public var inboxPrefix: String
    /// Seed for server shuffling and back-off jitter; `nil` picks one at random.
    public var randomSeed: UInt64?
    public var logger: Logger

    public init(
        servers: [String] = ["nats://127.0.0.1:4222"], name: String? = nil, user: String? = nil,
        password: String? = nil, token: String? = nil, tls: TLSConfiguration? = nil,
        connectTimeout: Duration = .seconds(5), reconnect: ReconnectPolicy = ReconnectPolicy(),
        randomizeServers: Bool = true, ignoreDiscoveredServers: Bool = false,
        retryOnFailedInitialConnect: Bool = false, pingInterval: Duration = .seconds(30),
        maxPingsOutstanding: Int = 2, reconnectBufferSize: Int = 8 * 1024 * 1024,
        subscriptionBufferLimit: Int = 65_536, echo: Bool = true, inboxPrefix: String = "_INBOX",
        randomSeed: UInt64? = nil, logger: Logger = Logger(label: "nats", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.servers = servers
        self.name = name
        self.user = user
        self.password = password
        self.token = token
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.reconnect = reconnect
        self.randomizeServers = randomizeServers
        self.ignoreDiscoveredServers = ignoreDiscoveredServers
        self.retryOnFailedInitialConnect = retryOnFailedInitialConnect
        self.pingInterval = pingInterval
        self.maxPingsOutstanding = maxPingsOutstanding
        self.reconnectBufferSize = reconnectBufferSize
        self.subscriptionBufferLimit = subscriptionBufferLimit
        self.echo = echo
        self.inboxPrefix = inboxPrefix
        self.randomSeed = randomSeed
        self.logger = logger
    }
}

extension Duration {
    var timeAmount: TimeAmount { .nanoseconds(nanoseconds) }

    /// Whole nanoseconds, at most `Int64.max` (about 292 years): a longer duration (an
    /// operator's retention of 10^10 s) trapped on overflow.
    var nanoseconds: Int64 {
        let (s, atto) = components
        let (whole, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return s < 0 ? .min : .max }
        let (sum, overflowAgain) = whole.addingReportingOverflow(atto / 1_000_000_000)
        return overflowAgain ? (whole < 0 ? .min : .max) : sum
    }
}

extension NATSOptions {
    /// A client TLS configuration that trusts the CA certificates in `caFile` (PEM) in addition to
    /// nothing else, and optionally presents a client certificate (mutual TLS).
    /// Pass `nil` for `caFile` to use the system's trust store.
    public static func tlsConfiguration(
        caFile: String?, certificateFile: String? = nil, keyFile: String? = nil
    ) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
        }
        if let certificateFile, let keyFile {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        }
        return tls
    }
}
