import Embedded
import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Sessions
import Sim
import Synchronization

/// A node in a network of nodes in one process: its database, session hub and engine, run as
/// services until `stop`. A restart is a new `SessionNode` over the same directory.
final class SessionNode: Sendable {
    let database: SQLiteNodeDatabase
    let hub: SessionHub
    let engine: FlowEngine
    let parties: [String]
    private let network: InProcessNetwork
    private let services: Mutex<[Task<Void, Never>]> = Mutex([])

    /// `store`: the flow store the engine uses, made from the node database's.
    init(directory: String, parties: [String], network: InProcessNetwork, transport: (any PeerTransport)? = nil,
         configuration: SessionConfiguration = SessionNode.configuration, hooks: Hooks = Hooks(),
         store: (SQLiteFlowStore) -> any FlowStore = { $0 }) throws {
        database = try SQLiteNodeDatabase(path: directory + "/node.sqlite")
        hub = SessionHub(store: database.sessions, transport: transport ?? network, configuration: configuration, logger: quietLogger)
        var registry = FlowRegistry()
        registry.register(PingFlow.self)
        registry.registerResponder(PongResponder.self, for: PingFlow.self)
        registry.register(StreamFlow.self)
        registry.registerResponder(CollectResponder.self, for: StreamFlow.self)
        registry.register(AskFlow.self)
        registry.registerResponder(FailingResponder.self, for: AskFlow.self)
        registry.register(UnansweredFlow.self)
        registry.register(StuckFlow.self)
        registry.registerResponder(StuckResponder.self, for: StuckFlow.self)
        registry.register(CloseEarlyFlow.self)
        registry.registerResponder(CollectResponder.self, for: CloseEarlyFlow.self)
        var services = FlowServices(sessions: hub)
        services.add(hooks, as: Hooks.self)
        engine = FlowEngine(store: store(database.flows), registry: registry, services: services,
                            configuration: .init(hospital: HospitalPolicy(initialDelay: .milliseconds(1), maxDelay: .milliseconds(5))),
                            logger: quietLogger)
        hub.attach(engine)
        self.parties = parties
        self.network = network
    }

    /// Wide: the tests that do not test the timeout must not meet it on a loaded machine.
    static let configuration = SessionConfiguration(timeout: .seconds(120), backoff: .init(initialDelay: .milliseconds(10), maxDelay: .milliseconds(200)),
                                                    pollInterval: .milliseconds(50), batchSize: 7)

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

    func flows(named name: String) async throws -> [FlowRecord] { try await engine.list(FlowQuery(flowName: name)) }

    /// The messages not yet delivered.
    func outbox() async throws -> [OutboxMessage] { try await database.sessions.outbound(limit: 1_000, excluding: []) }
}

func text(_ string: String) -> [UInt8] { Array(string.utf8) }
func string(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// Sends "ping n" and takes the answer, `rounds` times; returns the answers.
struct PingFlow: Flow {
    var rounds: Int
    var counterparty = "O=Bob"
    func run(_ context: FlowContext) async throws -> [String] {
        let session = try await context.initiateFlow(with: counterparty, as: "O=Alice", by: Self.self)
        var answers = [String]()
        for round in 1...rounds { answers.append(string(try await context.sendAndReceive(text("ping \(round)"), on: session))) }
        return answers
    }
}

/// Answers each "ping n" with "pong n" until the initiator closes; with `gated` (`gatedFirst`)
/// called in its hooks it waits at the gate before its second (first) answer. Returns how many
/// it answered.
struct PongResponder: ResponderFlow {
    var session: FlowSession
    init(session: FlowSession) { self.session = session }

    func run(_ context: FlowContext) async throws -> Int {
        let hooks = context.services.service(Hooks.self)!
        var answered = 0
        while true {
            let ping: [UInt8]
            do { ping = try await context.receive(on: session) } catch let error as SessionError where error.code == .sessionClosed {
                return answered
            }
            if (answered == 0 && hooks.calls("gatedFirst") > 0) || (answered == 1 && hooks.calls("gated") > 0) {
                _ = try await context.external("gate") { _ in
                    try await hooks.gate.pass()
                    return true
                }
            }
            _ = try await context.external("answer") { _ in
                try hooks.call("answer")
                return true
            }
            try await context.send(text(string(ping).replacingOccurrences(of: "ping", with: "pong")), on: session)
            answered += 1
        }
    }
}

/// Sends "1" ... "count" and ends (closing the session) without waiting for anything.
struct StreamFlow: Flow {
    var count: Int
    func run(_ context: FlowContext) async throws -> Int {
        let session = try await context.initiateFlow(with: "O=Bob", as: "O=Alice", by: Self.self)
        for n in 1...count { try await context.send(text("\(n)"), on: session) }
        return count
    }
}

/// Takes messages until the session closes; returns them in the order taken.
struct CollectResponder: ResponderFlow {
    var session: FlowSession
    init(session: FlowSession) { self.session = session }

    func run(_ context: FlowContext) async throws -> [String] {
        var taken = [String]()
        while true {
            do { taken.append(string(try await context.receive(on: session))) } catch let error as SessionError where error.code == .sessionClosed {
                return taken
            }
        }
    }
}

/// Asks once and waits for the answer (`FailingResponder` fails instead; `UnansweredFlow` has none).
struct AskFlow: Flow {
    func run(_ context: FlowContext) async throws -> String {
        let session = try await context.initiateFlow(with: "O=Bob", as: "O=Alice", by: Self.self)
        return string(try await context.sendAndReceive(text("question"), on: session))
    }
}

struct FailingResponder: ResponderFlow {
    var session: FlowSession
    init(session: FlowSession) { self.session = session }

    func run(_ context: FlowContext) async throws -> String {
        _ = try await context.receive(on: session)
        throw FlowFailure("no answer for you")
    }
}

/// Opens a session for which the counterparty's node registers no responder.
struct UnansweredFlow: Flow {
    func run(_ context: FlowContext) async throws -> String {
        let session = try await context.initiateFlow(with: "O=Bob", as: "O=Alice", by: Self.self)
        return string(try await context.sendAndReceive(text("anyone?"), on: session))
    }
}

/// Asks, and waits for an answer `StuckResponder` never gives: it waits for a second question.
struct StuckFlow: Flow {
    func run(_ context: FlowContext) async throws -> String {
        let session = try await context.initiateFlow(with: "O=Bob", as: "O=Alice", by: Self.self)
        return string(try await context.sendAndReceive(text("question"), on: session))
    }
}

struct StuckResponder: ResponderFlow {
    var session: FlowSession
    init(session: FlowSession) { self.session = session }

    func run(_ context: FlowContext) async throws -> String {
        _ = try await context.receive(on: session)
        return string(try await context.receive(on: session))
    }
}

/// Delivers every message twice, as a link whose acknowledgement was lost would.
struct DuplicatingTransport: PeerTransport {
    let network: InProcessNetwork
    func deliver(_ bodies: [[UInt8]], to recipient: String) async throws -> [DeliveryAnswer] {
        let first = try await network.deliver(bodies, to: recipient)
        let second = try await network.deliver(bodies, to: recipient)
        precondition(first == second, "a node answered one delivery two ways")
        return second
    }
}

/// Sends one message, closes the session, then tries to send again; returns the error code it met.
struct CloseEarlyFlow: Flow {
    func run(_ context: FlowContext) async throws -> String {
        let session = try await context.initiateFlow(with: "O=Bob", as: "O=Alice", by: Self.self)
        try await context.send(text("only"), on: session)
        try await context.close(session)
        try await context.close(session)
        do {
            try await context.send(text("more"), on: session)
            return "sent after close"
        } catch let error as SessionError {
            return error.code.rawValue
        }
    }
}

/// Holds every delivery to `held` until `release()`; the others pass at once.
final class HoldingTransport: PeerTransport, Sendable {
    private let network: InProcessNetwork
    private let held: String
    private let gate = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    init(network: InProcessNetwork, held: String) {
        self.network = network
        self.held = held
    }

    /// Deliveries waiting at the gate.
    var holding: Int { gate.withLock { $0.waiting.count } }

    func release() {
        let waiting = gate.withLock { gate in
            gate.open = true
            defer { gate.waiting = [] }
            return gate.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    func deliver(_ bodies: [[UInt8]], to recipient: String) async throws -> [DeliveryAnswer] {
        if recipient == held {
            await withCheckedContinuation { continuation in
                let open = gate.withLock { gate in
                    if !gate.open { gate.waiting.append(continuation) }
                    return gate.open
                }
                if open { continuation.resume() }
            }
        }
        return try await network.deliver(bodies, to: recipient)
    }
}

/// Fails, lets through, or loses the answer of each delivery at random (from a seed), and
/// sometimes delivers twice: a link at its worst short of losing the outbox.
final class FlakyTransport: PeerTransport, Sendable {
    private let network: InProcessNetwork
    private let random: Mutex<SeededGenerator>

    init(network: InProcessNetwork, seed: UInt64) {
        self.network = network
        random = Mutex(SeededGenerator(seed: seed))
    }

    struct Dropped: Error {}

    func deliver(_ bodies: [[UInt8]], to recipient: String) async throws -> [DeliveryAnswer] {
        switch random.withLock({ Int.random(in: 0..<10, using: &$0) }) {
        case 0, 1: throw Dropped()  // lost on the way there
        case 2, 3:
            _ = try await network.deliver(bodies, to: recipient)
            throw Dropped()  // the answer lost on the way back
        case 4:
            _ = try await network.deliver(bodies, to: recipient)
            return try await network.deliver(bodies, to: recipient)
        case 5:
            // Only the first messages get there: the rest are delivered again later.
            return try await network.deliver(Array(bodies.prefix(1)), to: recipient)
        default:
            return try await network.deliver(bodies, to: recipient)
        }
    }
}
