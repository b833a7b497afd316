import Flows
import HawserCore
import Logging
import Membership
import P2P
import Prometheus
import ServiceLifecycle
import Sessions

/// A member node's flow sessions with its peers (docs/p2p.md, docs/sessions.md): the session hub
/// on the node database's inbox and outbox, the transport that signs and delivers the outbox,
/// and the gRPC listener that takes peers' deliveries.
struct NodePeers: Sendable {
    let hub: SessionHub
    /// Started before the flow engine and stopped after it: the transport the link manager uses.
    let transport: GRPCPeerTransport
    /// Started after the flow engine and stopped before it: the link manager, then the listener.
    let services: [any Service]

    /// `delivers`: whether this process owns the node's outbox now (a hot-warm standby does not;
    /// in hot-hot, the process that serves partition 0). `sharedInbox`: other processes take
    /// peers' messages too (hot-hot). `listens`: this process takes peers' messages (a hot-hot
    /// process without the p2p role does not).
    init(_ network: NodeNetworkConfiguration, name: String, identity: SigningKey, membership: MembershipWatcher,
         sessions: NodeSessionsConfiguration, store: any SessionStore, delivers: @escaping @Sendable () -> Bool, sharedInbox: Bool,
         listens: Bool, timeouts: HTTPSettings, registry: PrometheusCollectorRegistry, logger: Logger) {
        let logger = { var logger = logger; logger[metadataKey: "component"] = "p2p"; return logger }()
        transport = GRPCPeerTransport(settings: .init(me: name, identity: identity, maxDeliveryBytes: network.maxDeliveryBytes,
                                                      callTimeout: .milliseconds(network.deliveryTimeoutMillis)),
                                      membership: { membership.current }, logger: logger)
        hub = SessionHub(store: store, transport: transport, configuration: sessions.settings, logger: logger, delivers: delivers,
                         sharedInbox: sharedInbox)
        let service = PeerService(hub: hub, check: DeliveryCheck(me: name, maxSkew: .milliseconds(network.maxClockSkewMillis)),
                                  membership: { membership.current }, logger: logger)
        let listen = network.listen
        let listener = GRPCListener(host: listen.host, port: listen.port, maxMessageBytes: network.maxDeliveryBytes,
                                    maxMessageBytesInFlight: network.maxDeliveryBytesInFlight,
                                    cap: ListenerCap(limit: listen.maxConnections, listener: "p2p", option: "network.listen.maxConnections",
                                                       perSource: (listen.maxConnectionsPerAddress, "network.listen.maxConnectionsPerAddress"),
                                                       registry: registry, logger: logger),
                                    calls: ListenerCap(limit: listen.maxCalls, of: .calls, listener: "p2p", option: "network.listen.maxCalls",
                                                       registry: registry, logger: logger),
                                    maxConcurrentStreams: listen.maxConcurrentStreams, idleTimeout: .milliseconds(listen.idleTimeoutMillis),
                                    timeouts: timeouts, services: [service], draining: GRPCDraining(), logger: logger) { port in
            logger.notice("serving peer-to-peer delivery", metadata: ["host": "\(listen.host)", "port": "\(port)"])
        }
        services = listens ? [hub, listener] : [hub]
    }
}

/// The network's parties for flows (`PartyDirectory`), from the membership in use: a party added
/// to the definition is known as soon as the node takes the new version.
struct MembershipDirectory: PartyDirectory {
    let membership: MembershipWatcher
    func party(named name: String) -> Party? { membership.current.party(named: name) }
}
