import Foundation
import HawserCore
import Hummingbird
import Logging
import Embedded
import JetStreamLog
import Notary
import Prometheus
import ServiceLifecycle

/// Assembles a notary replica: the log (embedded SQLite, or a JetStream stream shared by a
/// cluster of replicas, which is also their link), the replica's SQLite store, the notary's
/// parts (`NotaryAssembly`) and the HTTP API, run as one service group. The HTTP server stops
/// first on shutdown (draining requests in flight), then the appender, then the replica, then the
/// gossip, then the log's connection; the data directory's lock (`DataDirectoryLock`, taken before
/// anything in it is opened) is released last.
public enum NotaryNode {
    /// Everything a running notary is made of, for tests and tools that look inside.
    public struct Parts: Sendable {
        public let notary: Notary
        public let replica: Replica
        public let store: SQLiteNotaryStore
        public let log: any ReplicatedLog
        /// The replica's database file, of which `GET /v1/snapshot` serves copies.
        public let storePath: String
    }

    /// Every route the HTTP API serves, as (method, path) with `{name}` path parameters, and the
    /// query parameters it takes.
    public static var routes: [(method: String, path: String, query: Set<String>)] {
        NotaryAPI.routes.map { ($0.method.rawValue, $0.path, $0.query) }
    }

    /// Builds the node from `configuration`, whose relative paths resolve against `baseDirectory`.
    /// `onListening` is called with the bound port once the server accepts connections.
    public static func application(configuration: NotaryConfiguration, baseDirectory: String, logger: Logger,
                                   clock: @escaping @Sendable () -> Instant = Instant.now,
                                   onListening: @escaping @Sendable (Int) async -> Void = { _ in })
        throws -> (app: some ApplicationProtocol, parts: Parts) {
        let problems = configuration.problems
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).path
        }
        let signer = try KeyFile.load(resolve(configuration.keyFile)).key
        let data = resolve(configuration.dataDirectory)
        let lock = try DataDirectoryLock(directory: data)
        try ListenCheck.ensureBindable(host: configuration.listen.host, port: configuration.listen.port)
        let log: any ReplicatedLog
        var link: (any ReplicaLink)?
        var logServices = [any Service]()
        switch configuration.log.kind {
        case .embedded:
            log = try SQLiteLog(path: data + "/log.sqlite")
        case .jetstream:
            let jetStream = JetStreamLog(configuration: configuration.log.jetStream, logger: logger)
            log = jetStream
            link = jetStream
            logServices.append(LogConnection(log: jetStream))
        }
        let membership = configuration.log.membership
        let storePath = data + "/notary.sqlite"
        let store = try SQLiteNotaryStore(path: storePath, durable: membership.members.count > 1)

        let registry = PrometheusCollectorRegistry()
        let metrics = NotaryMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let notary = NotaryAssembly(name: configuration.name, signer: signer, authorisedParties: configuration.parties,
                                    limits: configuration.notaryLimits, log: log, store: store, link: link, membership: membership,
                                    appendTimeout: .milliseconds(configuration.log.appendTimeoutMillis),
                                    metrics: metrics, logger: logger, clock: clock)
        let api = NotaryAPI(notary: notary.notary, replica: notary.replica, store: store, storePath: storePath,
                            limits: configuration.limits, registry: registry)
        let app = Application(
            router: api.router(),
            server: .http1(timeouts: configuration.http, logger: logger),
            configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port),
                                 serverName: "hawser"),
            services: [DataDirectoryHold(lock: lock)] + logServices + notary.services,
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.listen.port) },
            logger: logger)
        return (app, Parts(notary: notary.notary, replica: notary.replica, store: store, log: log, storePath: storePath))
    }
}

/// Closes the JetStream log's connection once the services using it have stopped (it is listed
/// first, so the service group shuts it down last).
struct LogConnection: Service {
    let log: JetStreamLog

    func run() async throws {
        try? await gracefulShutdown()
        await log.close()
    }
}
