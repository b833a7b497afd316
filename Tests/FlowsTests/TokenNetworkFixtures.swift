import Embedded
import FlowNotaries
import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Metrics
import Notary
import Sessions
import Synchronization
import TokenSample
import Vault

/// The network's parties by name: what the node builds from its membership, as a dictionary.
struct StaticPartyDirectory: PartyDirectory {
    let parties: [String: Party]
    init(_ parties: [Party]) { self.parties = Dictionary(uniqueKeysWithValues: parties.map { ($0.name, $0) }) }
    func party(named name: String) -> Party? { parties[name] }
}

let carolKey = SigningKey(seed: [UInt8](repeating: 3, count: 32))!
/// Alice, Bob and Carol, with the keys of `sampleKeys` (and Carol's).
let tokenDirectory = StaticPartyDirectory(["O=Alice", "O=Bob"].map { sampleKeys.party(named: $0)! }
                                          + [Party(name: "O=Carol", publicKey: carolKey.publicKey)])

/// An embedded notary that outlives the nodes that use it (a node restarts, the notary does
/// not); `port` counts each transaction's notarisations.
final class SharedNotary: Sendable {
    let port: CountingNotary
    private let tasks: [Task<Void, Never>]

    init(directory: String) throws {
        let assembly = NotaryAssembly(name: "O=Notary", signer: notaryKey, authorisedParties: nil, limits: NotaryLimits(),
                                      log: try SQLiteLog(path: directory + "/log.sqlite"),
                                      store: try SQLiteNotaryStore(path: directory + "/notary.sqlite"),
                                      metrics: NotaryMetrics(factory: NOOPMetricsHandler.instance), logger: quietLogger)
        let replica = assembly.replica, appender = assembly.appender
        port = CountingNotary(EmbeddedNotaryPort(assembly.notary))
        tasks = [Task { try? await replica.run() }, Task { try? await appender.run() }]
    }

    func stop() async {
        for task in tasks {
            task.cancel()
            await task.value
        }
    }
}

/// A notary port that counts the requests about each transaction.
final class CountingNotary: FlowNotary {
    private let base: any FlowNotary
    private let counts = Mutex<[SecureHash: Int]>([:])

    init(_ base: any FlowNotary) { self.base = base }

    var identity: Party { base.identity }
    var verifier: AnswerVerifier { base.verifier }

    func notarise(_ request: NotarisationRequest) async throws -> NotarisationAnswer {
        counts.withLock { $0[request.txId, default: 0] += 1 }
        return try await base.notarise(request)
    }

    func requests(about txId: SecureHash) -> Int { counts.withLock { $0[txId] ?? 0 } }
}

/// A node running the token sample in a network of nodes in one process: its database, vault,
/// session hub and engine, with the shared notary and the directory. A restart is a new
/// `TokenNode` over the same directory.
final class TokenNode: Sendable {
    let database: SQLiteNodeDatabase
    let hub: SessionHub
    let engine: FlowEngine
    let parties: [String]
    private let network: InProcessNetwork
    private let services: Mutex<[Task<Void, Never>]> = Mutex([])

    /// `notaryPort`: how this node reaches `notary` (default: straight).
    init(directory: String, parties: [String], network: InProcessNetwork, notary: SharedNotary,
         partyDirectory: StaticPartyDirectory = tokenDirectory, transport: (any PeerTransport)? = nil, hooks: Hooks = Hooks(),
         sessions: SessionConfiguration = SessionNode.configuration, notaryPort: (any FlowNotary)? = nil) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        database = try SQLiteNodeDatabase(path: directory + "/node.sqlite")
        hub = SessionHub(store: database.sessions, transport: transport ?? network, configuration: sessions, logger: quietLogger)
        var registry = FlowRegistry()
        TokenSample.register(into: &registry)
        registry.register(SendPayload.self)
        registry.register(MoveInline.self)
        let keys = LocalKeys(Dictionary(uniqueKeysWithValues: parties.map { ($0, sampleKeys.signingKey(of: $0) ?? carolKey) }))
        var services = FlowServices(notary: notaryPort ?? notary.port, keys: keys, sessions: hub)
        services.add(database.vault, as: (any VaultStore).self)
        services.add(partyDirectory as any PartyDirectory, as: (any PartyDirectory).self)
        services.add(hooks, as: Hooks.self)
        engine = FlowEngine(store: database.flows, registry: registry, services: services,
                            configuration: .init(hospital: HospitalPolicy(initialDelay: .milliseconds(1), maxDelay: .milliseconds(5)),
                                                 endEffects: { [.releaseSoftLocks(holder: $0.rawValue)] }),
                            logger: quietLogger)
        hub.attach(engine)
        self.parties = parties
        self.network = network
    }

    /// Starts the engine and the link manager, then lets peers reach the node.
    func start() async throws {
        let engine = self.engine
        let hub = self.hub
        services.withLock { $0 = [Task { try? await engine.run() }, Task { await hub.run() }] }
        try await eventually("the engine resumed its flows") { engine.hasResumed }
        network.register(hub, for: parties)
    }

    /// Peers can no longer reach the node; its flows stop where their journals end.
    func stop() async {
        network.unregister(parties)
        for task in services.withLock({ $0 }) {
            task.cancel()
            await task.value
        }
    }

    /// Runs `flow` to its end.
    func run<F: Flow>(_ flow: F) async throws -> FlowRecord {
        try await engine.waitForEnd(try await engine.start(flow).id, timeout: .seconds(120))
    }

    func issue(_ amount: Int64, to owner: String) async throws {
        let issued = try await run(IssueTokens(owner: owner, amount: amount))
        precondition(issued.status == .completed, "the issue failed: \(issued.error ?? "")")
    }

    func balances() async throws -> [String: Int128] { try await TokenSample.balances(database.vault) }

    /// States some flow still holds reserved.
    func locked() async throws -> [VaultState] {
        try await database.vault.query(VaultQuery(consumption: .all)).filter { $0.lockedBy != nil }
    }

    func flows(named name: String) async throws -> [FlowRecord] { try await engine.list(FlowQuery(flowName: name)) }

    func outbox() async throws -> [OutboxMessage] { try await database.sessions.outbound(limit: 1_000, excluding: []) }
}

/// Opens a session announced as `MoveTokens` (so the counterparty's `ReceiveTokens` answers),
/// sends `payload` as it is and returns the answer: a forger's payment.
struct SendPayload: Flow {
    static let flowName = "SendPayload"
    /// The flow whose responder takes it: a payment's (`ReceiveTokens`) or a swap's (`AcceptSwap`).
    enum As: String, Codable { case payment, swap }
    var payload: Data
    var to = "O=Bob"
    var from = "O=Alice"
    var by = As.payment

    func run(_ context: FlowContext) async throws -> String {
        let session = by == .swap ? try await context.initiateFlow(with: to, as: from, by: SwapTokens.self)
            : try await context.initiateFlow(with: to, as: from, by: MoveTokens.self)
        return String(decoding: try await context.sendAndReceive([UInt8](payload), on: session), as: UTF8.self)
    }
}

/// A notary port that, once `armed`, calls `arrived` and holds each request at `gate` before
/// passing it on.
final class GatedNotary: FlowNotary {
    private let base: any FlowNotary
    let gate = Gate()
    let armed = Mutex(false)
    private let arrived: @Sendable () -> Void

    init(_ base: any FlowNotary, arrived: @escaping @Sendable () -> Void = {}) {
        self.base = base
        self.arrived = arrived
    }

    var identity: Party { base.identity }
    var verifier: AnswerVerifier { base.verifier }

    func notarise(_ request: NotarisationRequest) async throws -> NotarisationAnswer {
        if armed.withLock({ $0 }) {
            arrived()
            try await gate.pass()
        }
        return try await base.notarise(request)
    }
}

/// A link that fails every delivery while `blocked` (the peer looks unreachable).
final class BlockableTransport: PeerTransport {
    let network: InProcessNetwork
    let blocked = Mutex(false)

    init(network: InProcessNetwork) { self.network = network }

    func deliver(_ bodies: [[UInt8]], to recipient: String) async throws -> [DeliveryAnswer] {
        if blocked.withLock({ $0 }) { throw PeerUnreachable(recipient) }
        return try await network.deliver(bodies, to: recipient)
    }
}
