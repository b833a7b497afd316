import Embedded
import Flows
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import HawserCore
import HawserTestSupport
import Logging
import Membership
import P2P
import Sessions
import Synchronization

let quietLogger: Logger = {
    var logger = Logger(label: "p2p-test")
    logger.logLevel = .critical
    return logger
}()

/// The network definition the nodes of a test use, changed as their servers bind ports.
final class TestNetwork: Sendable {
    private let current: Mutex<Membership>
    init(_ definition: NetworkDefinition) throws { current = Mutex(try Membership(definition)) }
    var membership: Membership { current.withLock { $0 } }
    func use(_ definition: NetworkDefinition) throws {
        let membership = try Membership(definition)
        current.withLock { $0 = membership }
    }
}

/// A node of a test network, in this process but reached only over loopback gRPC: its database,
/// flow engine, session hub, P2P server and transport. A restart is a new `PeerNode` over the
/// same directory and port.
final class PeerNode: Sendable {
    let name: String
    let database: SQLiteNodeDatabase
    let hub: SessionHub
    let engine: FlowEngine
    let transport: GRPCPeerTransport
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let serving = Mutex<Task<Void, Never>?>(nil)

    init(name: String, identity: SigningKey, directory: String, network: TestNetwork, port: Int = 0,
         callTimeout: Duration = .seconds(10), hedgeAfter: Duration? = nil) throws {
        self.name = name
        database = try SQLiteNodeDatabase(path: directory + "/node.sqlite")
        transport = GRPCPeerTransport(settings: .init(me: name, identity: identity, maxDeliveryBytes: 64 * 1024, callTimeout: callTimeout,
                                                      hedgeAfter: hedgeAfter),
                                      membership: { network.membership }, logger: quietLogger)
        hub = SessionHub(store: database.sessions, transport: transport,
                         configuration: SessionConfiguration(timeout: .seconds(120), backoff: .init(initialDelay: .milliseconds(10), maxDelay: .milliseconds(200)),
                                                             pollInterval: .milliseconds(50), batchSize: 50),
                         logger: quietLogger)
        var registry = FlowRegistry()
        registry.register(Ping.self)
        registry.registerResponder(Pong.self, for: Ping.self)
        registry.register(Burst.self)
        registry.registerResponder(Count.self, for: Burst.self)
        engine = FlowEngine(store: database.flows, registry: registry, services: FlowServices(sessions: hub),
                            configuration: .init(hospital: HospitalPolicy(initialDelay: .milliseconds(1), maxDelay: .milliseconds(5))),
                            logger: quietLogger)
        hub.attach(engine)
        let service = PeerService(hub: hub, check: DeliveryCheck(me: name, maxSkew: .seconds(300)), membership: { network.membership },
                                  logger: quietLogger)
        server = GRPCServer(transport: HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext,
                                                                  config: .defaults { $0.rpc.maxRequestPayloadSize = 64 * 1024 }),
                            services: [service])
    }

    /// Starts the server, the engine, the link manager and the transport; returns the bound port.
    func start() async throws -> Int {
        let (server, engine, hub, transport) = (self.server, self.engine, self.hub, self.transport)
        serving.withLock { $0 = Task { try? await server.serve() } }
        tasks.withLock { $0 = [Task { try? await engine.run() }, Task { await hub.run() }, Task { await transport.run() }] }
        try await eventually("the engine resumed its flows") { engine.hasResumed }
        return try await server.listeningAddress?.ipv4?.port ?? -1
    }

    /// Stops the node's own work, then its server. The server is shut down gracefully and its
    /// task not cancelled: cancelling `serve` while a peer's stream is still buffered traps in
    /// NIO ("Deinited NIOAsyncWriter without calling finish()", as swift-http-server#137 reports
    /// of the same pattern); it crashed the whole test process once.
    func stop() async {
        for task in tasks.withLock({ $0 }) {
            task.cancel()
            await task.value
        }
        server.beginGracefulShutdown()
        await serving.withLock({ $0 })?.value
    }

    func flows(named name: String) async throws -> [FlowRecord] { try await engine.list(FlowQuery(flowName: name)) }
    func outbox() async throws -> [OutboxMessage] { try await database.sessions.outbound(limit: 100_000, excluding: []) }
}

/// Alice's node and Bob's node, each with one party, at the given ports.
enum TwoNodes {
    static let aliceIdentity = SigningKey(seed: [UInt8](repeating: 1, count: 32))!
    static let bobIdentity = SigningKey(seed: [UInt8](repeating: 2, count: 32))!
    static let outsider = SigningKey(seed: [UInt8](repeating: 9, count: 32))!

    static func definition(version: Int = 1, alice: [Int], bob: [Int]) -> NetworkDefinition {
        let party = { (seed: UInt8) in SigningKey(seed: [UInt8](repeating: seed, count: 32))!.publicKey.base64 }
        return NetworkDefinition(version: version, nodes: [
            .init(name: "O=Alice Node", identityKey: aliceIdentity.publicKey.base64, addresses: alice.map { "grpc://127.0.0.1:\($0)" },
                  parties: [.init(name: "O=Alice", publicKey: party(11))]),
            .init(name: "O=Bob Node", identityKey: bobIdentity.publicKey.base64, addresses: bob.map { "grpc://127.0.0.1:\($0)" },
                  parties: [.init(name: "O=Bob", publicKey: party(12))]),
        ], notaries: [.init(name: "O=Notary", publicKey: party(13), addresses: ["grpc://127.0.0.1:1"])])
    }
}

func text(_ string: String) -> [UInt8] { Array(string.utf8) }
func string(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// Sends "ping n" to Bob and takes the answer, `rounds` times.
struct Ping: Flow {
    var rounds: Int
    func run(_ context: FlowContext) async throws -> [String] {
        let session = try await context.initiateFlow(with: "O=Bob", as: "O=Alice", by: Self.self)
        var answers = [String]()
        for round in 1...rounds { answers.append(string(try await context.sendAndReceive(text("ping \(round)"), on: session))) }
        return answers
    }
}

struct Pong: ResponderFlow {
    var session: FlowSession
    init(session: FlowSession) { self.session = session }
    func run(_ context: FlowContext) async throws -> Int {
        var answered = 0
        while true {
            let ping: [UInt8]
            do { ping = try await context.receive(on: session) } catch let error as SessionError where error.code == .sessionClosed {
                return answered
            }
            try await context.send(text(string(ping).replacingOccurrences(of: "ping", with: "pong")), on: session)
            answered += 1
        }
    }
}

/// Sends `count` messages of `size` bytes to Bob and ends without waiting.
struct Burst: Flow {
    var count: Int
    var size: Int
    func run(_ context: FlowContext) async throws -> Int {
        let session = try await context.initiateFlow(with: "O=Bob", as: "O=Alice", by: Self.self)
        for n in 1...count { try await context.send(text(String(n)) + [UInt8](repeating: 0x2E, count: max(0, size - 8)), on: session) }
        return count
    }
}

/// Takes messages until the session closes; returns how many, and checks that they came in order.
struct Count: ResponderFlow {
    var session: FlowSession
    init(session: FlowSession) { self.session = session }
    func run(_ context: FlowContext) async throws -> Int {
        var taken = 0
        while true {
            let body: [UInt8]
            do { body = try await context.receive(on: session) } catch let error as SessionError where error.code == .sessionClosed {
                return taken
            }
            taken += 1
            guard string(Array(body.prefix(while: { $0 != 0x2E }))) == String(taken) else {
                throw FlowFailure("message \(taken) came out of order: \(string(Array(body.prefix(12))))")
            }
        }
    }
}
