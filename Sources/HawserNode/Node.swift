import Coordination
import Embedded
import Flows
import Foundation
import HawserCore
import Hummingbird
import Logging
import Notary
import Prometheus
import ServiceLifecycle
import TokenSample
import Vault

/// Assembles the all-in-one node: its notary (embedded, with a SQLite log and store, or a remote
/// one), the node database (flows, journal, vault; SQLite or PostgreSQL), the flow engine with the token sample's flows,
/// and the RPC API, run as one service group. On shutdown the HTTP server stops first, then the
/// flow engine (running flows stop at their next effect and resume from their journal on
/// restart), then the notary (or the remote notary's connections), and the data directory's lock
/// is released last.
public enum Node {
    /// Everything a running node is made of, for tests and tools that look inside.
    public struct Parts: Sendable {
        let engines: FlowEngines
        /// The flow engine serving now (a hot-warm standby, or a process still taking over, has none: do not ask one).
        public var engine: FlowEngine {
            guard let engine = try? engines.any() else { preconditionFailure("a standby, or a process taking over, runs no flow engine") }
            return engine
        }
        public let database: NodeDatabase
        /// The embedded notary and its store; nil when the node uses a remote notary.
        public let notary: Notary?
        public let notaryStore: SQLiteNotaryStore?
    }

    /// Every route the RPC API serves, as (method, path) with `{name}` path parameters, and the
    /// query parameters it takes.
    public static var routes: [(method: String, path: String, query: Set<String>)] {
        NodeAPI.routes.map { ($0.method.rawValue, $0.path, $0.query) }
    }

    /// Builds the node from `configuration`, whose relative paths resolve against `baseDirectory`.
    /// `onPartition` hears each partition of a hot-hot node that starts (true) or stops serving here.
    public static func application(configuration: NodeConfiguration, baseDirectory: String, logger: Logger,
                                   onListening: @escaping @Sendable (Int) async -> Void = { _ in },
                                   onPartition: @escaping @Sendable (Int, Bool) -> Void = { _, _ in })
        async throws -> (app: some ApplicationProtocol, parts: Parts) {
        try await application(configuration: configuration, baseDirectory: baseDirectory, logger: logger,
                        authenticator: RPCAuthenticator(users: configuration.rpcUsers, limits: configuration.rpcLogin),
                        onListening: onListening, onPartition: onPartition)
    }

    /// As above with the given authenticator (tests hold its password checks).
    static func application(configuration: NodeConfiguration, baseDirectory: String, logger: Logger,
                            authenticator: RPCAuthenticator, onListening: @escaping @Sendable (Int) async -> Void = { _ in },
                            onPartition: @escaping @Sendable (Int, Bool) -> Void = { _, _ in })
        async throws -> (app: some ApplicationProtocol, parts: Parts) {
        let problems = configuration.problems(baseDirectory: baseDirectory)
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        // The members of a pair log to one place: each line says whose it is.
        let logger = configuration.ha.id.map { id in
            var logger = logger
            logger[metadataKey: "node"] = "\(id)"
            return logger
        } ?? logger
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).path
        }
        // What the configuration names (key and password files, the watchdog's epoch) is read
        // before anything is made: a start refused for it leaves no directory, lock or schema.
        let keys = try Self.partyKeys(configuration.parties, resolve: resolve)
        let notaryKey = configuration.notary.kind == .embedded
            ? try KeyFile.load(resolve(configuration.notaryKeyFile ?? NodeConfiguration.defaultNotaryKeyFile), option: "notaryKeyFile").key : nil
        if configuration.database.kind == .postgres {
            _ = try configuration.database.password(resolve: resolve, environment: ProcessInfo.processInfo.environment)
        }
        let ha = configuration.ha
        let fence: WriteFence? = switch ha.mode {
        // A hot-hot node fences each partition's stores with a fence of its own (below).
        case .single, .hotHot: nil
        case .hotWarm: WriteFence(resource: HAConfiguration.resource(shard: HAConfiguration.shard))
        case .hotCold: WriteFence(resource: HAConfiguration.resource(shard: HAConfiguration.shard),
                                  epoch: try HAConfiguration.hotColdEpoch(environment: ProcessInfo.processInfo.environment, role: "node"))
        }
        let member = try configuration.network?.open(name: configuration.name, parties: keys, resolve: resolve, logger: logger)
        // What this process does (all of it unless a hot-hot process's `ha.roles` chose).
        let roles = configuration.ha.effectiveRoles
        if let listen = configuration.network?.listen, roles.contains(.p2p) { try ListenCheck.ensureBindable(host: listen.host, port: listen.port, section: "network.listen") }
        let data = resolve(configuration.dataDirectory)
        // Before anything in the data directory is opened: one process per directory, and a taken
        // port found now rather than after the notary and the engine have started.
        // Hot-warm nodes share the directory of their shared SQLite database (the fence guards it).
        let lock = try DataDirectoryLock(directory: data, shared: configuration.ha.mode.stands)
        try ListenCheck.ensureBindable(host: configuration.listen.host, port: configuration.listen.port, section: "listen")

        // Everything that may still refuse to start comes before the notary: a remote notary's
        // HTTP client, once made, must be shut down.
        // The one place the node's stores are chosen (`database` section).
        let database = try await NodeDatabase.open(configuration.database, data: data, fence: fence, waiting: ha.mode != .hotCold,
                                                   resolve: resolve, logger: logger)
        try await HotHotRecord.check(ha, baseDirectory: baseDirectory, store: database.flows)
        let engines = ha.flowPartitions.map { FlowEngines(partitions: $0, serving: onPartition) } ?? FlowEngines(node: ServingState(.standby(active: nil)))
        let serving = engines.node
        // The health check's read of the database, shared by the stands of a process (one per
        // hot-hot partition): a verdict is kept half an election round.
        let shared = SharedProbe(fresh: .milliseconds((ha.election?.roundMs ?? 500) / 2)) { [database] in try await database.read() }
        let probe: @Sendable () async throws -> Void = { try await shared() }
        let stand = ha.mode == .hotWarm ? try ShardStand(ha, baseDirectory: baseDirectory, serving: serving, logger: logger, probe: probe) : nil

        let registry = PrometheusCollectorRegistry()
        let notary: NodeNotary
        switch configuration.notary.kind {
        case .embedded:
            guard let notaryKey else { preconditionFailure("an embedded notary's key is read first") }
            notary = try .embedded(name: configuration.notaryName ?? NodeConfiguration.defaultNotaryName, key: notaryKey,
                                   hosted: keys.map { Party(name: $0.key, publicKey: $0.value.publicKey) }, data: data,
                                   registry: registry, logger: logger)
        case .remote:
            notary = try .remote(configuration.notary)
        }

        // A member of a network talks to its peers through flow sessions. Any process that serves
        // takes peers' messages (responders start where RPC starts would: a P2P worker, without the
        // flow role, queues them); one delivers the outbox: the active one, or in hot-hot the one of
        // those with the p2p role that leads the outbox's election (`OutboxStand`). An RPC worker
        // (neither flow nor p2p role) runs no flow and has no sessions.
        //
        // The connections a hot-hot process's elections share: its partitions' and its outbox's.
        let connections: ElectionConnections?
        do {
            connections = ha.mode == .hotHot && !roles.isDisjoint(with: [.flow, .p2p])
                ? try ha.election?.resolved(against: baseDirectory).partitionConnections() : nil
        } catch let error as CoordinationError {
            throw ConfigurationError(["ha.election: \(error)"])
        }
        let outbox: OutboxStand? = if ha.mode == .hotHot, member != nil, roles.contains(.p2p) {
            try OutboxStand(ha, sharing: connections, baseDirectory: baseDirectory, registry: registry, logger: logger, probe: probe)
        } else { nil }
        let delivers: @Sendable () -> Bool = if ha.mode == .hotHot { { outbox?.leads ?? false } } else { { serving.isActive } }
        let peers: NodePeers? = if let network = configuration.network, let member, !roles.isDisjoint(with: [.flow, .p2p]) {
            NodePeers(network, name: configuration.name, identity: member.identity, membership: member.watcher,
                      sessions: configuration.sessions, store: database.sessions, delivers: delivers, sharedInbox: ha.mode == .hotHot,
                      listens: roles.contains(.p2p), timeouts: configuration.http, registry: registry, logger: logger)
        } else { nil }
        peers?.hub.attach { engines.responderStarter }
        // A hot-hot node's partitions: each fences its stores with a fence of its own.
        let partitionFences = (0..<(ha.flowPartitions?.count ?? 0)).map { WriteFence(resource: HAConfiguration.resource(partition: $0)) }
        // A hot-hot process serving partitions runs the starts RPC workers queue.
        let queuedStarts: QueuedStarts? = if ha.mode == .hotHot, roles.contains(.flow) {
            QueuedStarts(store: database.flows, engines: engines, fences: partitionFences,
                         interval: .milliseconds(ha.startQueuePollMillis), logger: logger)
        } else { nil }
        // A hot-hot process tells the others on the bus what its hub wrote, what it queued and
        // which flows settled (`ha.bus`).
        let settled = FlowSettledSignals()
        let bus: NodeBus? = if let settings = ha.bus, let election = ha.election, let id = ha.id {
            NodeBus(settings, election: election.election, id: id, hub: peers?.hub, starts: queuedStarts, settled: settled,
                    registry: registry, logger: logger)
        } else { nil }
        var flows = FlowRegistry()
        TokenSample.register(into: &flows)
        var common = FlowServices(notary: notary.port, keys: LocalKeys(keys), sessions: peers?.hub)
        if let member { common.add(MembershipDirectory(membership: member.watcher) as any PartyDirectory, as: (any PartyDirectory).self) }
        // An engine on `stores` (their flow store wrapped in `store`) whose flows get ids from
        // `newFlowID` (a hot-hot partition's fall in it).
        let makeEngine: @Sendable (any FlowStore, NodeDatabase, (@Sendable () -> FlowID)?) -> FlowEngine = { [flows, common] store, stores, newFlowID in
            var services = common
            services.add(stores.vault, as: (any VaultStore).self)
            var settings = engineConfiguration(configuration)
            if let newFlowID { settings.newFlowID = newFlowID }
            if let bus { settings.settled = { bus.flowSettled($0) } }
            settings.runsFlows = roles.contains(.flow)
            return FlowEngine(store: store, registry: flows, services: services, configuration: settings, logger: logger)
        }
        // What owns the flows: the one engine (single, hot-cold), the shard's terms (hot-warm), or
        // the terms of each partition this process wins (hot-hot).
        let owner: [any Service]
        if let map = ha.flowPartitions, !roles.contains(.flow) {
            // An RPC or P2P worker: its starts and responders go to the queue, in partitions taken at random.
            let engine = makeEngine(database.flows, database) { map.newID(in: Int.random(in: 0..<map.count)) }
            let owners = ha.election.map { PartitionOwners(election: $0.resolved(against: baseDirectory)) }
            engines.queue(StartQueue(engine: engine, store: database.flows, map: map, queued: { bus?.startQueued($0) }, settled: settled,
                                     owners: owners, maxStartsPerCommit: configuration.maxWritesPerCommit))
            owner = []
        } else if let map = ha.flowPartitions {
            var stands = [ShardStand]()
            var shards = [any Service]()
            // The partitions this process serves commit together (`PartitionCommits`).
            let commits = PartitionCommits(maxWritesPerCommit: configuration.maxWritesPerCommit, commit: database.flows.commit(_:proving:))
            for k in 0..<map.count {
                let fence = partitionFences[k]
                let stores = database.fenced(fence)
                let stand = try ShardStand(ha, partition: k, sharing: connections, baseDirectory: baseDirectory, serving: engines.partitions[k],
                                           logger: logger, probe: probe)
                let work = FlowShardWork(store: PartitionFlowStore(fenced: stores.flows, fence: fence, commits: commits),
                                         owns: { map.partition(of: $0) == k }, claim: { try await stores.flows.claim() },
                                         draining: { engines.isDraining }) { store in
                    makeEngine(store, stores) { map.newID(in: k) }
                }
                stands.append(stand)
                shards.append(ShardService(stand: stand, fence: fence, work: work, serving: engines.partitions[k]))
            }
            owner = shards
                + [PartitionBalancing(stands: stands, interval: .milliseconds(ha.election?.roundMs ?? 500), logger: logger)]
                + (queuedStarts.map { [$0] } ?? [])
        } else if let fence {
            // Hot-warm: a term each time the process wins the shard; hot-cold: one, for its life,
            // at the epoch its fence holds from the start.
            let work = FlowShardWork(store: database.flows, claim: { try await database.flows.claim() }, draining: { engines.isDraining }) {
                makeEngine($0, database, nil)
            }
            owner = if let stand { [ShardService(stand: stand, fence: fence, work: work, serving: serving)] }
                    else { [HotColdFence(work: work, checkClaim: { try await database.flows.checkClaim() }, serving: serving,
                                              epoch: try fence.epochForWrite(), logger: logger)] }
        } else {
            let engine = makeEngine(database.flows, database, nil)
            serving.set(.active(engine))
            owner = [engine]
        }

        let hosted = keys.keys.sorted()
        let openAPI = NodeOpenAPI(registry: flows, parties: { [watcher = member?.watcher] in
            guard let watcher else { return hosted }
            return Set(hosted + watcher.current.definition.nodes.flatMap { $0.parties.map(\.name) }).sorted()
        }, host: configuration.listen.host, port: configuration.listen.port)
        let api = NodeAPI(flows: engines, gated: ha.mode != .single, database: database, replica: notary.replica,
                          authenticator: authenticator,
                          identity: NodeIdentityJSON(name: configuration.name, notary: notary.port.identity.name,
                                                     parties: keys.keys.sorted(), flows: flows.names),
                          maxBodyBytes: configuration.maxBodyBytes, maxBodyBytesInFlight: configuration.maxBodyBytesInFlight, registry: registry, openAPI: openAPI, network: member?.watcher,
                          rpc: roles.contains(.rpc))
        // Stopped in reverse order: the elections' shared connections after the stands, the outbox's
        // stand after the hub.
        let coordination: [any Service] = (connections.map { [ElectionConnectionsHold(connections: $0)] } ?? []) + owner
            + (outbox.map { [$0] } ?? [])
        let app = Application(
            router: api.router(),
            server: .http1(configuration.http, cap: ListenerCap(limit: configuration.http.maxConnections, listener: "http",
                                                                  option: "http.maxConnections", registry: registry, logger: logger),
                          logger: logger),
            configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port),
                                 serverName: "hawser-node"),
            // Stopped in reverse order: the database's pool outlives the engine that writes to it,
            // the engine outlives the peers' listener and the link manager, and the transport
            // outlives the link manager.
            services: [DataDirectoryHold(lock: lock)] + database.services
                + [RuntimeSettingsWatch(store: database.flows, sessions: peers?.hub, interval: .seconds(1), logger: logger)] + notary.services + (peers.map { [$0.transport] } ?? [])
                + coordination + (peers?.services ?? []) + (bus.map { [$0] } ?? []) + (member.map { [$0.watcher] } ?? []),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.listen.port
                openAPI.listening(on: port)
                await onListening(port)
            },
            logger: logger)
        // Long polls and event streams end as the shutdown begins: the server waits for them.
        return (GracefulApplication(app, beforeTheServerStops: { engines.endWaits() }), Parts(engines: engines, database: database, notary: notary.embedded?.notary, notaryStore: notary.embedded?.store))
    }

    /// The parties' keys by name. Each party's key file must name it and hold a key of its own:
    /// a key shared by two parties lets the flows of either spend the other's states.
    static func partyKeys(_ parties: [NodeConfiguration.Party], resolve: (String) -> String) throws -> [String: SigningKey] {
        var keys = [String: SigningKey](), owners = [PublicKey: String](), problems = [String]()
        for party in parties {
            let file = try KeyFile.load(resolve(party.keyFile), option: "parties (\(party.name))")
            if file.name != party.name {
                problems.append("parties: the key file \(party.keyFile) is \"\(file.name)\"'s, not \"\(party.name)\"'s")
            }
            if let other = owners.updateValue(party.name, forKey: file.key.publicKey) {
                problems.append("parties: \"\(other)\" and \"\(party.name)\" have one key: each party needs a key of its own")
            }
            keys[party.name] = file.key
        }
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        return keys
    }

    /// How the node's flow engine treats flows: the hospital's policy, group commit, the soft
    /// locks a flow holds released with its final status, and, where another process may have
    /// run the flows (every mode but single), the wait before parking a flow found marked.
    static func engineConfiguration(_ configuration: NodeConfiguration) -> FlowEngine.Configuration {
        var settings = FlowEngine.Configuration(hospital: configuration.hospital.policy, maxWritesPerCommit: configuration.maxWritesPerCommit,
                                                endEffects: { [.releaseSoftLocks(holder: $0.rawValue)] })
        if configuration.ha.mode != .single { settings.markerGrace = markerGrace }
        return settings
    }

    /// How long a process that takes flows over waits for the replay markers of a former owner
    /// that lost them without dying (it clears them as its engine stops, within a second or two
    /// of its lease lapsing) before it parks the flows still marked.
    static let markerGrace = Duration.seconds(5)

    /// Creates keys for `parties` (and for the embedded notary), a user with every permission, and
    /// a configuration file in `directory`. `partyKeyFiles` are existing key files of further
    /// parties (e.g. ones a notary already authorises), named in the configuration by their
    /// absolute paths. With a remote `notary` no notary key is made, and the lines returned name
    /// the parties that notary must authorise. Returns what it did, one line each.
    public static func initialise(directory: String, port: Int, parties: [String], partyKeyFiles: [String] = [],
                                  username: String, password: String,
                                  notary: NodeNotaryConfiguration = NodeNotaryConfiguration()) throws -> String {
        let path = directory + "/node.json"
        // Checked before any key is written, so that a refused call leaves nothing behind.
        let (configuration, keyFileParties) = try initialConfiguration(directory: directory, port: port, parties: parties,
                                                               partyKeyFiles: partyKeyFiles, username: username,
                                                               passwordHash: PasswordHash.make(password), notary: notary)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var hosted = keyFileParties
        var lines = [String]()
        if let keyFile = configuration.notaryKeyFile {
            try KeyFile(name: configuration.notaryName ?? NodeConfiguration.defaultNotaryName, key: SigningKey()).save(directory + "/" + keyFile)
        }
        for (name, party) in zip(parties, configuration.parties.suffix(parties.count)) {
            let key = SigningKey()
            try KeyFile(name: name, key: key).save(directory + "/" + party.keyFile)
            hosted.append(Party(name: name, publicKey: key.publicKey))
            lines.append("created the key of \(name) in \(directory)/\(party.keyFile)")
        }
        try configuration.save(path)
        lines.append("created \(path) with RPC user `\(username)`; every option is described in docs/node.md")
        if notary.kind == .remote {
            lines.append("the notary at \((notary.urls ?? []).joined(separator: ", ")) must authorise these parties "
                         + "(`authorisedParties` in its configuration, or `hawser notary init --authorise`):")
            lines += hosted.map { "  \($0.name)=\($0.publicKey.base64)" }
        }
        return lines.joined(separator: "\n")
    }

    /// The configuration `initialise` writes in `directory`, with the parties of `partyKeyFiles`,
    /// or every problem with it (`ConfigurationError`: a `node.json` there already, a bad port or
    /// party name, a key file that cannot be read). Writes nothing.
    public static func initialConfiguration(directory: String, port: Int, parties: [String], partyKeyFiles: [String],
                                            username: String, passwordHash: String,
                                            notary: NodeNotaryConfiguration) throws -> (NodeConfiguration, hosted: [Party]) {
        let path = directory + "/node.json"
        guard !FileManager.default.fileExists(atPath: path) else { throw ConfigurationError(["\(path) already exists"]) }
        var configuration = NodeConfiguration()
        configuration.listen.port = port
        configuration.notary = notary
        configuration.rpcUsers = [RPCUser(username: username, passwordHash: passwordHash, permissions: [.all])]
        var hosted = [Party]()
        for file in partyKeyFiles {
            let absolute = URL(fileURLWithPath: file).standardizedFileURL.path
            let (name, key) = try KeyFile.load(absolute)
            configuration.parties.append(.init(name: name, keyFile: absolute))
            hosted.append(Party(name: name, publicKey: key.publicKey))
        }
        configuration.parties += parties.enumerated().map { NodeConfiguration.Party(name: $1, keyFile: "party-\($0 + 1).key") }
        if notary.kind == .embedded {
            configuration.notaryName = NodeConfiguration.defaultNotaryName
            configuration.notaryKeyFile = NodeConfiguration.defaultNotaryKeyFile
        }
        let problems = configuration.problems
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        return (configuration, hosted)
    }
}
