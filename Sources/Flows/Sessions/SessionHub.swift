import HawserCore
import Logging
import ServiceLifecycle
import Sessions
import Synchronization

/// A node's flow sessions, wired to its database and a transport: flows wait here for their
/// messages (`FlowSessions`); peers' messages arrive in `accept`, which starts responders and
/// writes the inbox before it answers; its `link` delivers the outbox. Run it (a service) for as
/// long as the node's engine runs; `attach` the engine before peers can reach it.
public final class SessionHub: FlowSessions, Service, Sendable {
    public let configuration: SessionConfiguration
    public let link: LinkManager
    private let store: any SessionStore
    private let clock: any FlowClock
    private let logger: Logger
    private let waiters: InboxWaiters
    private let engine = Mutex<FlowEngine?>(nil)
    private let isActive: @Sendable () -> Bool

    /// `isActive`: whether this process owns the node's flows now (a hot-warm standby shares the
    /// database but does not); only while it does, the link manager delivers and peers' messages
    /// are taken.
    public init(store: any SessionStore, transport: any PeerTransport, configuration: SessionConfiguration = SessionConfiguration(),
                clock: any FlowClock = SystemFlowClock(), logger: Logger, isActive: @escaping @Sendable () -> Bool = { true }) {
        let waiters = InboxWaiters()
        self.configuration = configuration
        self.store = store
        self.clock = clock
        self.logger = logger
        self.waiters = waiters
        self.isActive = isActive
        link = LinkManager(store: store, transport: transport, configuration: configuration, clock: clock, logger: logger,
                           isActive: isActive) { sent, error in
            guard let message = try? SessionMessage.decode(sent.payload), let answer = SessionInbound.refusal(of: message, error) else {
                logger.error("a peer refused a session message", metadata: ["message": "\(sent.messageId)", "error": "\(error)"])
                return
            }
            if try await store.acceptInbound(InboxMessage(answer)) { waiters.notify(answer.key) }
        }
    }

    /// The engine whose registry names the responders, and which starts them.
    public func attach(_ engine: FlowEngine) { self.engine.withLock { $0 = engine } }

    /// Delivers the outbox until cancelled or shut down gracefully (what is not delivered stays
    /// in the outbox for the next run).
    public func run() async {
        let link = self.link
        await cancelWhenGracefulShutdown { await link.run() }
    }

    // MARK: FlowSessions

    public var timeout: Duration { configuration.timeout }

    public func receive(_ key: SessionMessageKey, timeout: Duration) async throws -> SessionMessage? {
        let store = self.store
        let found = try await waiters.wait(for: key, timeout: timeout, clock: clock) { try await store.inbound(key) }
        return try found.map { try SessionMessage.decode($0.body) }
    }

    public func outboxChanged() { link.wake() }

    // MARK: Arriving messages

    /// Peers' messages, in order: each taken as `accept` says, up to the first that cannot be
    /// taken now. Returns the answers of those taken; throws only if not even the first could be.
    public func accept(_ arrived: [ArrivedMessage]) async throws -> [DeliveryAnswer] {
        var answers = [DeliveryAnswer]()
        for message in arrived {
            do { answers.append(try await accept(message)) } catch {
                if answers.isEmpty { throw error }
                logger.debug("took part of a delivery", metadata: ["taken": "\(answers.count)", "of": "\(arrived.count)", "error": "\(error)"])
                break
            }
        }
        return answers
    }

    /// A peer's message: answered `accepted` once it is in the inbox (and its responder started,
    /// for an `initiate`), now or at an earlier delivery. Throws if it cannot be taken now (the
    /// database cannot be written, the engine is draining or not attached): the sender tries
    /// again. A responder started while the engine stops runs when the node starts again.
    private func accept(_ arrived: ArrivedMessage) async throws -> DeliveryAnswer {
        let message = arrived.message
        guard isActive(), let engine = engine.withLock({ $0 }) else { throw PeerUnreachable(message.recipient) }
        switch SessionInbound.decide(message, responder: engine.registry.responder(for:)) {
        case .refuse(let error):
            logger.info("refused a session message", metadata: ["message": "\(message.key)", "error": "\(error)"])
            return .refused(error)
        case .startResponder(let flowName, let session):
            _ = try await engine.startReporting(flowName: flowName, arguments: try engine.registry.responderArguments(flowName, session),
                                                clientRequestId: SessionInbound.responderRequestId(session.id), responder: true)
        case .store:
            break
        }
        if try await store.acceptInbound(InboxMessage(key: message.key, body: arrived.body)) { waiters.notify(message.key) }
        return .accepted
    }
}
