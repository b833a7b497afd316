import Embedded
import Flows
import Foundation
import HawserCore
import Hummingbird
import Logging
import Notary
import Prometheus
import TokenSample
import Vault

/// Assembles the all-in-one node: the embedded notary (SQLite log and store), the node database
/// (flows, journal, vault), the flow engine with the token sample's flows, and the RPC API, run
/// as one service group. On shutdown the HTTP server stops first, then the flow engine (running
/// flows stop at their next effect and resume from their journal on restart), then the notary,
/// and the data directory's lock is released last.
public enum Node {
    /// Everything a running node is made of, for tests and tools that look inside.
    public struct Parts: Sendable {
        public let engine: FlowEngine
        public let database: SQLiteNodeDatabase
        public let notary: Notary
        public let notaryStore: SQLiteNotaryStore
    }

    /// Every route the RPC API serves, as (method, path) with `{name}` path parameters, and the
    /// query parameters it takes.
    public static var routes: [(method: String, path: String, query: Set<String>)] {
        NodeAPI.routes.map { ($0.method.rawValue, $0.path, $0.query) }
    }

    /// Builds the node from `configuration`, whose relative paths resolve against `baseDirectory`.
    public static func application(configuration: NodeConfiguration, baseDirectory: String, logger: Logger,
                                   onListening: @escaping @Sendable (Int) async -> Void = { _ in })
        throws -> (app: some ApplicationProtocol, parts: Parts) {
        try application(configuration: configuration, baseDirectory: baseDirectory, logger: logger,
                        authenticator: RPCAuthenticator(users: configuration.rpcUsers, limits: configuration.rpcLogin),
                        onListening: onListening)
    }

    /// As above with the given authenticator (tests hold its password checks).
    static func application(configuration: NodeConfiguration, baseDirectory: String, logger: Logger,
                            authenticator: RPCAuthenticator, onListening: @escaping @Sendable (Int) async -> Void = { _ in })
        throws -> (app: some ApplicationProtocol, parts: Parts) {
        let problems = configuration.problems
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).path
        }
        let notaryKey = try KeyFile.load(resolve(configuration.notaryKeyFile)).key
        var keys = [String: SigningKey]()
        for party in configuration.parties { keys[party.name] = try KeyFile.load(resolve(party.keyFile)).key }
        let data = resolve(configuration.dataDirectory)
        // Before anything in the data directory is opened: one process per directory, and a taken
        // port found now rather than after the notary and the engine have started.
        let lock = try DataDirectoryLock(directory: data)
        try ListenCheck.ensureBindable(host: configuration.listen.host, port: configuration.listen.port)

        // The embedded notary, without its HTTP API. It serves only this node's flows, in small
        // batches: its appender and replica share one thread, so the replica's turn after an
        // append wakes no other thread. A standalone notary keeps them apart, where at 10,000
        // requests/s they work in parallel.
        let log = try SQLiteLog(path: data + "/log.sqlite")
        let notaryStore = try SQLiteNotaryStore(path: data + "/notary.sqlite")
        let registry = PrometheusCollectorRegistry()
        let metrics = NotaryMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let hosted = keys.map { Party(name: $0.key, publicKey: $0.value.publicKey) }
        let embedded = NotaryAssembly(name: configuration.notaryName, signer: notaryKey, authorisedParties: hosted,
                                      limits: NotaryLimits(), log: log, store: notaryStore, metrics: metrics, logger: logger,
                                      shareThread: true)
        let notary = embedded.notary, replica = embedded.replica

        let database = try SQLiteNodeDatabase(path: data + "/node.sqlite")
        var flows = FlowRegistry()
        TokenSample.register(into: &flows)
        var services = FlowServices(notary: EmbeddedNotaryPort(notary), keys: LocalKeys(keys))
        services.add(database.vault, as: (any VaultStore).self)
        let engine = FlowEngine(store: database.flows, registry: flows, services: services,
                                configuration: engineConfiguration(configuration), logger: logger)

        let openAPI = NodeOpenAPI(registry: flows, parties: keys.keys.sorted(), host: configuration.listen.host, port: configuration.listen.port)
        let api = NodeAPI(engine: engine, database: database, replica: replica,
                          authenticator: authenticator,
                          identity: NodeIdentityJSON(name: configuration.name, notary: configuration.notaryName,
                                                     parties: keys.keys.sorted(), flows: flows.names),
                          maxBodyBytes: configuration.maxBodyBytes, registry: registry, openAPI: openAPI)
        let app = Application(
            router: api.router(),
            server: .http1(timeouts: configuration.http, logger: logger),
            configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port),
                                 serverName: "hawser-node"),
            services: [DataDirectoryHold(lock: lock)] + embedded.services + [engine],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.listen.port
                openAPI.listening(on: port)
                await onListening(port)
            },
            logger: logger)
        return (app, Parts(engine: engine, database: database, notary: notary, notaryStore: notaryStore))
    }

    /// How the node's flow engine treats flows: the hospital's policy, group commit, and the
    /// soft locks a flow holds released with its final status.
    static func engineConfiguration(_ configuration: NodeConfiguration) -> FlowEngine.Configuration {
        .init(hospital: configuration.hospital.policy, maxWritesPerCommit: configuration.maxWritesPerCommit,
              endEffects: { [ReleaseSoftLocks(holder: $0.rawValue)] })
    }

    /// Creates keys for the notary and `parties`, a user with every permission, and a
    /// configuration file in `directory`. Returns what it created, one line each.
    public static func initialise(directory: String, port: Int, parties: [String], username: String, password: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/node.json"
        guard !FileManager.default.fileExists(atPath: path) else { throw ConfigurationError(["\(path) already exists"]) }
        var configuration = NodeConfiguration()
        configuration.listen.port = port
        var lines = [String]()
        try KeyFile(name: configuration.notaryName, key: SigningKey()).save(directory + "/notary.key")
        for (index, name) in parties.enumerated() {
            let file = "party-\(index + 1).key"
            try KeyFile(name: name, key: SigningKey()).save(directory + "/" + file)
            configuration.parties.append(.init(name: name, keyFile: file))
            lines.append("created the key of \(name) in \(directory)/\(file)")
        }
        configuration.rpcUsers = [RPCUser(username: username, passwordHash: PasswordHash.make(password), permissions: [.all])]
        let problems = configuration.problems
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        try configuration.save(path)
        lines.append("created \(path) with RPC user `\(username)`; every option is described in docs/node.md")
        return lines.joined(separator: "\n")
    }
}
