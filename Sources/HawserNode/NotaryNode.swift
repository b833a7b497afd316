import Coordination
import Embedded
import Foundation
import HawserCore
import Hummingbird
import Logging
import JetStreamLog
import Notary
import PostgresStores
import Prometheus
import ServiceLifecycle

/// Assembles a notary replica: the log (embedded SQLite, a JetStream stream shared by a cluster
/// of replicas, which is also their link, or a table in PostgreSQL), the replica's store (SQLite,
/// or PostgreSQL with the log), the notary's parts (`NotaryAssembly`), the HTTP API and the gRPC
/// service (if configured), run as one service group. The HTTP server stops first on shutdown
/// (draining requests in flight), then the gRPC listener, then the appender, then the replica (in hot-warm: the shard's term; in hot-cold: then its fence's
/// service), then the gossip, then the log's connection or the database's pool; the data
/// directory's lock (`DataDirectoryLock`, taken before anything in it is opened) is released last.
public enum NotaryNode {
    /// Everything a running notary is made of, for tests and tools that look inside.
    public struct Parts: Sendable {
        let serving: ServingState<NotaryTerm>
        /// The notary parts serving now (a hot-warm standby, or a process still taking over, has none: do not ask one).
        public var term: NotaryTerm {
            guard case .active(let term) = serving.current else { preconditionFailure("a standby, or a process taking over, runs no notary") }
            return term
        }
        public var notary: Notary { term.notary }
        public var replica: Replica { term.replica }
        public let store: any NotaryStore
        public let log: any ReplicatedLog
        /// The replica's SQLite database file, of which `GET /v1/snapshot` serves copies (nil on PostgreSQL).
        public let storePath: String?
    }

    /// Every route the HTTP API serves, as (method, path) with `{name}` path parameters, and the
    /// query parameters it takes.
    public static var routes: [(method: String, path: String, query: Set<String>)] {
        NotaryAPI.routes.map { ($0.method.rawValue, $0.path, $0.query) }
    }

    /// Builds the notary from `configuration`, whose relative paths resolve against `baseDirectory`.
    /// `onListening` is called with the bound port once the server accepts connections, and
    /// `onGRPCListening` with the gRPC port once the gRPC listener (`grpc`, if configured) does.
    public static func application(configuration: NotaryConfiguration, baseDirectory: String, logger: Logger,
                                   clock: @escaping @Sendable () -> Instant = Instant.now,
                                   onListening: @escaping @Sendable (Int) async -> Void = { _ in },
                                   onGRPCListening: @escaping @Sendable (Int) async -> Void = { _ in })
        async throws -> (app: some ApplicationProtocol, parts: Parts) {
        let problems = configuration.problems(baseDirectory: baseDirectory)
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        // The members of a pair log to one place: each line says whose it is.
        let logger = configuration.ha.id.map { id in
            var logger = logger
            logger[metadataKey: "notary"] = "\(id)"
            return logger
        } ?? logger
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).path
        }
        // What the configuration names (the key and password files, the watchdog's epoch) is read
        // before anything is made: a start refused for it leaves no directory, lock or schema.
        let signer = try KeyFile.load(resolve(configuration.keyFile), option: "keyFile").key
        if configuration.database.kind == .postgres {
            _ = try configuration.database.password(resolve: resolve, environment: ProcessInfo.processInfo.environment,
                                                    variable: NodeDatabaseConfiguration.notaryPasswordVariable)
        }
        let hotColdEpoch = configuration.ha.mode == .hotCold
            ? try HAConfiguration.hotColdEpoch(environment: ProcessInfo.processInfo.environment, role: "notary") : nil
        let data = resolve(configuration.dataDirectory)
        // Hot-warm and hot-cold notaries keep nothing in their data directory (their database is
        // PostgreSQL) but may share it.
        let lock = try DataDirectoryLock(directory: data, shared: configuration.ha.mode != .single)
        try ListenCheck.ensureBindable(host: configuration.listen.host, port: configuration.listen.port, section: "listen")
        if let grpc = configuration.grpc { try ListenCheck.ensureBindable(host: grpc.host, port: grpc.port, section: "grpc") }
        let resource = HAConfiguration.notaryResource(shard: HAConfiguration.shard)
        let fence: WriteFence? = configuration.ha.mode == .single ? nil : WriteFence(resource: resource, epoch: hotColdEpoch)
        let stores = try await NotaryStores.open(configuration, data: data, fence: fence, resolve: resolve, logger: logger)

        let registry = PrometheusCollectorRegistry()
        let metrics = NotaryMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let makeParts: @Sendable (any ReplicatedLog, any NotaryStore, (@Sendable (String) -> Void)?) -> NotaryTerm = { log, store, failed in
            NotaryTerm(NotaryAssembly(name: configuration.name, signer: signer, authorisedParties: configuration.parties,
                                      limits: configuration.notaryLimits, log: log, store: store, link: stores.link,
                                      membership: configuration.log.membership,
                                      appendTimeout: .milliseconds(configuration.log.appendTimeoutMillis),
                                      metrics: metrics, logger: logger, clock: clock), failed: failed)
        }
        let serving = ServingState<NotaryTerm>(.standby(active: nil))
        // What owns the notary's work: the shard's terms (hot-warm), or the one term (hot-cold, single).
        let owner: [any Service]
        switch (hotColdEpoch, fence, stores.claim) {
        case (nil, let fence?, let claim?):
            let stand = try ShardStand(configuration.ha, baseDirectory: baseDirectory, serving: serving, logger: logger) {
                [store = stores.store] in _ = try await store.head()
            }
            let work = NotaryShardWork(log: stores.log, store: stores.store, claimWrite: claim.make, makeParts: makeParts)
            owner = [ShardService(stand: stand, fence: fence, work: work, serving: serving)]
        case (let epoch?, _, let claim?):
            // One term for the process's life, every write fenced at the watchdog's epoch; the
            // first refused one (or a newer owner's claim) ends the process.
            let work = NotaryShardWork(log: stores.log, store: stores.store, claimWrite: claim.make, makeParts: makeParts)
            owner = [HotColdFence(work: work, checkClaim: claim.check, serving: serving, epoch: epoch, logger: logger)]
        default:
            let term = makeParts(stores.log, stores.store, nil)
            serving.set(.active(term))
            owner = term.assembly.services
        }
        let api = NotaryAPI(serving: serving, gated: configuration.ha.mode != .single, store: stores.store,
                            storePath: stores.storePath, limits: configuration.limits, registry: registry,
                            snapshots: SnapshotCredential(notaryKey: signer))
        // Listed last, so it stops first of the services, after the HTTP server.
        let grpc = configuration.grpc.map { grpc in
            let draining = GRPCDraining()
            return GRPCListener(host: grpc.host, port: grpc.port, maxMessageBytes: grpc.maxMessageBytes,
                                maxMessageBytesInFlight: grpc.maxMessageBytesInFlight,
                                cap: ListenerCap(limit: grpc.maxConnections, listener: "grpc", option: "grpc.maxConnections",
                                                   registry: registry, logger: logger),
                                calls: ListenerCap(limit: grpc.maxCalls, of: .calls, listener: "grpc", option: "grpc.maxCalls",
                                                   registry: registry, logger: logger),
                                maxConcurrentStreams: grpc.maxConcurrentStreams, idleTimeout: .milliseconds(grpc.idleTimeoutMillis),
                                timeouts: configuration.http, streamingPaths: ["/hawser.v1.Notary/NotariseStream"],
                                services: [NotaryGRPCService(serving: serving, maxInFlightPerStream: grpc.maxInFlightPerStream,
                                                             inFlight: InFlightSlots(grpc.maxInFlight), draining: draining, maxStateRefs: configuration.limits.maxStateRefs)],
                                draining: draining, logger: logger, onListening: onGRPCListening)
        }
        let app = Application(
            router: api.router(),
            server: .http1(configuration.http, cap: ListenerCap(limit: configuration.http.maxConnections, listener: "http",
                                                                  option: "http.maxConnections", registry: registry, logger: logger),
                          logger: logger),
            configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port),
                                 serverName: "hawser"),
            services: [DataDirectoryHold(lock: lock)] + stores.services + owner + (grpc.map { [$0] } ?? []),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.listen.port) },
            logger: logger)
        return (GracefulApplication(app), Parts(serving: serving, store: stores.store, log: stores.log, storePath: stores.storePath))
    }
}

/// The notary's log and store as the `database` and `log` sections choose them, and the services
/// they need running (the JetStream connection, the PostgreSQL pool). The one place they are chosen.
struct NotaryStores: Sendable {
    let log: any ReplicatedLog
    let store: any NotaryStore
    /// How the replicas of a JetStream cluster reach each other (nil otherwise).
    let link: (any ReplicaLink)?
    /// The SQLite store's file (nil on PostgreSQL).
    let storePath: String?
    /// A fenced (hot-warm, hot-cold) store's claim of its fence (`make`: its epoch, if higher than
    /// the one recorded) and the check that it still holds (`check`, `PostgresNotaryStore.checkClaim`).
    let claim: (make: @Sendable () async throws -> Void, check: @Sendable () async throws -> Void)?
    /// Started before the notary and stopped after it.
    let services: [any Service]

    static func open(_ configuration: NotaryConfiguration, data: String, fence: WriteFence?, resolve: (String) -> String,
                     logger: Logger) async throws -> NotaryStores {
        switch configuration.database.kind {
        case .postgres:
            // A shared (fenced) database bounds its sessions on the server, as the node's does.
            let pool = try await configuration.database.connect(resolve: resolve, passwordVariable: NodeDatabaseConfiguration.notaryPasswordVariable,
                                                                stallLimit: fence == nil ? nil : PostgresNotaryStore.stallLimit,
                                                                waiting: configuration.ha.mode != .hotCold, logger: logger)
            let (store, log) = try await DatabaseBirthRecord(data: data, name: "notary-database", identity: pool.name,
                                                           database: "the notary database (PostgreSQL at \(pool.name))")
                .guarding(present: try await PostgresNotaryStore.isPresent(pool), {
                    (try await PostgresNotaryStore.open(pool, fence: fence), try await PostgresLog.open(pool, fence: fence))
                }, incarnation: { try await $0.0.incarnation() })
            let make: @Sendable () async throws -> Void = { try await store.claim() }
            let check: @Sendable () async throws -> Void = { try await store.checkClaim() }
            let claim = fence == nil ? nil : (make: make, check: check)
            return NotaryStores(log: log, store: store, link: nil, storePath: nil, claim: claim, services: [pool])
        case .sqlite:
            let storePath = data + "/notary.sqlite"
            let membership = configuration.log.membership
            let store = try SQLiteNotaryStore(path: storePath, durable: membership.members.count > 1)
            switch configuration.log.kind {
            case .embedded:
                let logPath = data + "/log.sqlite"
                let log = try DatabaseBirthRecord(data: data, name: "notary-log", identity: "log.sqlite", database: "the notary's log (\(logPath))")
                    .guardingSQLite(path: logPath, { try SQLiteLog(path: logPath) },
                              incarnation: { try $0.incarnation() })
                return NotaryStores(log: log, store: store, link: nil, storePath: storePath, claim: nil, services: [])
            case .jetstream:
                let jetStream = JetStreamLog(configuration: configuration.log.jetStream, logger: logger)
                return NotaryStores(log: jetStream, store: store, link: jetStream, storePath: storePath, claim: nil,
                                    services: [LogConnection(log: jetStream)])
            }
        }
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
