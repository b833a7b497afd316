import Embedded
import FlowNotaries
import Flows
import HawserCore
import Logging
import Notary
import Prometheus
import ServiceLifecycle

/// The notary the node's flows use, as the configuration's `notary` section says: the embedded
/// one, or a remote one reached through `RemoteNotaryPort`. Built once, by `Node.application`.
struct NodeNotary {
    let port: any FlowNotary
    /// Started before the flow engine and stopped after it.
    let services: [any Service]
    /// The embedded notary's replica, whose catching up `/health/ready` waits for; nil when remote.
    let replica: Replica?
    let embedded: (notary: Notary, store: SQLiteNotaryStore)?

    /// The embedded notary, without its HTTP API, keeping its log and store in `data`. It serves
    /// only this node's flows, in small batches: its appender and replica share one thread, so
    /// the replica's turn after an append wakes no other thread. A standalone notary keeps them
    /// apart, where at 10,000 requests/s they work in parallel.
    static func embedded(name: String, key: SigningKey, hosted: [Party], data: String, registry: PrometheusCollectorRegistry,
                         logger: Logger) throws -> NodeNotary {
        let logPath = data + "/log.sqlite"
        let log = try DatabaseBirthRecord(data: data, name: "notary-log", identity: "log.sqlite", database: "the embedded notary's log (\(logPath))")
            .guardingSQLite(path: logPath, { try SQLiteLog(path: logPath) }, incarnation: { try $0.incarnation() })
        let store = try SQLiteNotaryStore(path: data + "/notary.sqlite")
        let metrics = NotaryMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let assembly = NotaryAssembly(name: name, signer: key, authorisedParties: hosted, limits: NotaryLimits(), log: log,
                                      store: store, metrics: metrics, logger: logger, shareThread: true)
        return NodeNotary(port: EmbeddedNotaryPort(assembly.notary), services: assembly.services, replica: assembly.replica,
                          embedded: (assembly.notary, store))
    }

    /// A remote notary as `configuration` (a valid `remote` section) describes it: nothing of it
    /// is kept in the data directory and no notary key is read.
    static func remote(_ configuration: NodeNotaryConfiguration) throws -> NodeNotary {
        guard let identity = configuration.identity, let urls = configuration.urls else {
            throw ConfigurationError(configuration.problems)
        }
        let port = try RemoteNotaryPort(identity: identity, urls: urls, retryPolicy: configuration.retryPolicy)
        return NodeNotary(port: port, services: [RemoteNotaryConnections(port: port)], replica: nil, embedded: nil)
    }
}

/// Closes the remote notary port's connections once the flow engine, which stops before it, no
/// longer uses them.
struct RemoteNotaryConnections: Service {
    let port: RemoteNotaryPort

    func run() async throws {
        try? await gracefulShutdown()
        try await port.shutdown()
    }
}
