import Foundation
import HawserCore
import Hummingbird
import Logging
import Embedded
import Notary
import Prometheus

/// Assembles an all-in-one notary: the embedded durable log, the replica's SQLite store, the
/// appender, the replica and the HTTP API, run as one service group. The HTTP server stops first
/// on shutdown (draining requests in flight), then the appender, then the replica.
public enum NotaryNode {
    /// Everything a running notary is made of, for tests and tools that look inside.
    public struct Parts: Sendable {
        public let notary: Notary
        public let replica: Replica
        public let store: SQLiteNotaryStore
        public let log: SQLiteLog
    }

    /// Every route the HTTP API serves, as (method, path) with `{name}` path parameters.
    public static var routes: [(method: String, path: String)] { NotaryAPI.routes.map { ($0.method.rawValue, $0.path) } }

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
        let log = try SQLiteLog(path: data + "/log.sqlite")
        let store = try SQLiteNotaryStore(path: data + "/notary.sqlite")

        let registry = PrometheusCollectorRegistry()
        let metrics = NotaryMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let limits = configuration.notaryLimits
        let waiters = AnswerWaiters()
        let replica = Replica(log: log, store: store, signer: signer, waiters: waiters,
                              maxEntriesPerApply: limits.maxEntriesPerApply, metrics: metrics, logger: logger)
        let appender = LogAppender(log: log, maxRequestsPerEntry: limits.maxRequestsPerLogEntry, clock: clock)
        let notary = Notary(name: configuration.name, signer: signer, authorisedParties: configuration.parties,
                            limits: limits, appender: appender, waiters: waiters, store: store, metrics: metrics)
        let api = NotaryAPI(notary: notary, replica: replica, limits: configuration.limits, registry: registry)
        let app = Application(
            router: api.router(),
            configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port),
                                 serverName: "hawser"),
            services: [replica, appender],
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.listen.port) },
            logger: logger)
        return (app, Parts(notary: notary, replica: replica, store: store, log: log))
    }
}
