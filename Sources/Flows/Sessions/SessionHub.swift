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
    private let starter = Mutex<StarterChoice?>(nil)
    /// Tells the node's other processes what this one wrote (a hot-hot node's bus), once `announce` names how.
    private let tell: Announcer
    private let delivers: @Sendable () -> Bool
    private let timeoutSet = Mutex<Duration?>(nil)
    /// How often a waiting `receive` looks at an inbox that other processes write too (nil: the
    /// inbox is this process's alone, and every message taken is handed over here).
    private let relook: Duration?

    /// `delivers`: whether this process owns the node's outbox now (a hot-warm standby shares the
    /// database but does not); only while it does, the link manager delivers and the inbox is
    /// pruned. Peers' messages are taken while an engine is attached (`attach`) and serving.
    /// `sharedInbox`: other processes of the node take peers' messages into the same inbox (a
    /// hot-hot node), so a waiting flow looks at it every `configuration.pollInterval`.
    public init(store: any SessionStore, transport: any PeerTransport, configuration: SessionConfiguration = SessionConfiguration(),
                clock: any FlowClock = SystemFlowClock(), logger: Logger, delivers: @escaping @Sendable () -> Bool = { true },
                sharedInbox: Bool = false) {
        let (waiters, tell) = (InboxWaiters(), Announcer())
        self.tell = tell
        self.configuration = configuration
        self.store = store
        self.clock = clock
        self.logger = logger
        self.waiters = waiters
        self.delivers = delivers
        relook = sharedInbox ? configuration.pollInterval : nil
        link = LinkManager(store: store, transport: transport, configuration: configuration, clock: clock, logger: logger,
                           isActive: delivers) { sent, error in
            guard let message = try? SessionMessage.decode(sent.payload), let answer = SessionInbound.refusal(of: message, error) else {
                logger.error("a peer refused a session message", metadata: ["message": "\(sent.messageId)", "error": "\(error)"])
                return
            }
            if try await store.acceptInbound(InboxMessage(answer)) {
                waiters.notify(answer)
                tell.say(.inboxWritten([answer.key]))
            }
        }
    }

    /// The engine whose registry names the responders, and which starts them.
    public func attach(_ engine: FlowEngine) { attach { engine } }

    /// Tells `announce` of every message this process writes to the inbox, and of every outbox
    /// write while another process delivers it: the node's other processes hear it (`heard`).
    public func announce(_ announce: @escaping @Sendable (SessionNews) -> Void) { tell.listener.withLock { $0 = .init(hear: announce) } }

    /// What another process of the node wrote.
    public func heard(_ news: SessionNews) {
        switch news {
        case .inboxWritten(let keys): waiters.lookAgain(keys)
        case .outboxWritten: link.wake()
        }
    }

    /// Where responders start: the starter `choose` gives at each delivery (nil: none serves in
    /// this process now, and peers' messages are not taken). A hot-hot process gives the engine of
    /// one of the partitions it serves, in turn, as it does for its RPC starts; one without the
    /// flow role, its start queue.
    public func attach(choosing choose: @escaping @Sendable () -> (any ResponderStarter)?) {
        starter.withLock { $0 = StarterChoice(choose: choose) }
    }

    /// Delivers the outbox, and prunes the inbox every `inboxPruneInterval`, until cancelled or
    /// shut down gracefully (what is not delivered stays in the outbox for the next run).
    public func run() async {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.link.run() }
                group.addTask { await self.pruneInboxUntilCancelled() }
            }
        }
    }

    /// Rows pruned in one transaction: a large backlog of ended sessions goes in several short ones.
    static let pruneBatch = 1_000

    /// Deletes the inbox messages of sessions whose flow here has ended (`SessionStore.pruneInbox`),
    /// batch after batch; returns how many. Only the process that owns the node's outbox prunes.
    @discardableResult
    public func pruneInbox() async throws -> Int {
        guard delivers() else { return 0 }
        var total = 0
        while true {
            let deleted = try await store.pruneInbox(limit: Self.pruneBatch)
            total += deleted
            if deleted < Self.pruneBatch { return total }
        }
    }

    private func pruneInboxUntilCancelled() async {
        while !Task.isCancelled {
            do { try await clock.sleep(for: configuration.inboxPruneInterval) } catch { return }
            do {
                let pruned = try await pruneInbox()
                if pruned > 0 { logger.debug("pruned the inbox", metadata: ["messages": "\(pruned)"]) }
            } catch {
                logger.warning("could not prune the inbox", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: FlowSessions

    /// The session timeout: the configuration's, unless changed at run time (`setTimeout`).
    public var timeout: Duration { timeoutSet.withLock { $0 } ?? configuration.timeout }

    /// Changes the session timeout of the waits that begin from now on (nil: the configuration's again).
    public func setTimeout(_ timeout: Duration?) { timeoutSet.withLock { $0 = timeout } }

    public func receive(_ key: SessionMessageKey, timeout: Duration) async throws -> SessionMessage? {
        let store = self.store
        return try await waiters.wait(for: key, timeout: timeout, relook: relook, clock: clock) {
            try await store.inbound(key).map { try SessionMessage.decode($0.body) }
        }
    }

    public func outboxChanged(for recipients: Set<String>) {
        if delivers() {
            link.wake(for: recipients)
        } else {
            tell.say(.outboxWritten)
        }
    }

    // MARK: Arriving messages

    /// Peers' messages, in order. Each is decided on its own (`SessionInbound`); the responders
    /// the initiates ask for are started together (their starts share commits), and the messages
    /// taken are written to the inbox in one transaction: a delivery costs a commit or two, not
    /// two a message. Returns the answers of the messages taken: all of them, or those before the
    /// first whose responder could not be started now (an `initiate` whose session id names
    /// another flow here is refused with `protocol_violation`). Throws if none could be taken (the
    /// database cannot be written, the engine is draining or not attached): the sender tries
    /// again. A responder started while the engine stops runs when the node starts again; one
    /// started for a message not answered is found again (by its session) when it comes back.
    ///
    /// `fromAnotherNode`: the delivery came from another node. Its `initiate` may not open a
    /// session whose id names a flow of this node as its initiator (`initiatorFlowId`): only this
    /// node opens those. Such an initiate was taken, and its responder disrupted the session this
    /// node's flow had opened (found from outside); it is refused with `protocol_violation`.
    public func accept(_ arrived: [ArrivedMessage], fromAnotherNode: Bool = false) async throws -> [DeliveryAnswer] {
        guard let first = arrived.first else { return [] }
        guard let starter = starter.withLock({ $0 })?.choose() else { throw PeerUnreachable(first.message.recipient) }
        var decisions = arrived.map { SessionInbound.decide($0.message, responder: starter.registry.responder(for:)) }
        if fromAnotherNode {
            for (index, decision) in decisions.enumerated() {
                guard case .startResponder(_, let session) = decision, let flow = SessionInbound.initiatorFlowId(of: session.id),
                      try await starter.hasFlow(FlowID(flow)) else { continue }
                decisions[index] = .refuse(SessionError(.protocolViolation, "session `\(session.id)` was opened by flow \(flow) of this node; "
                                                        + "another node cannot initiate it"))
            }
        }
        let failures = await startResponders(decisions, on: starter)
        var answers = [DeliveryAnswer](), taken = [ArrivedMessage]()
        for (index, (message, decision)) in zip(arrived, decisions).enumerated() {
            if case FlowEngineError.clientRequestIdReused? = failures[index] {
                // The session's id already names another flow here (another sender's session):
                // no retry changes that, so the message is refused, not the delivery.
                let error = SessionError(.protocolViolation, "session `\(message.message.session)` already names another flow on this node")
                logger.info("refused a session message", metadata: ["message": "\(message.message.key)", "error": "\(error)"])
                answers.append(.refused(error))
                continue
            }
            if let failure = failures[index] {
                if answers.isEmpty { throw failure }
                logger.debug("took part of a delivery", metadata: ["taken": "\(answers.count)", "of": "\(arrived.count)", "error": "\(failure)"])
                break
            }
            switch decision {
            case .refuse(let error):
                logger.info("refused a session message", metadata: ["message": "\(message.message.key)", "error": "\(error)"])
                answers.append(.refused(error))
            case .startResponder, .store:
                answers.append(.accepted)
                taken.append(message)
            }
        }
        let written = try await store.acceptInbound(taken.map { InboxMessage(key: $0.message.key, body: $0.body) })
        let new = zip(taken, written).filter(\.1).map(\.0.message)
        for message in new { waiters.notify(message) }
        if !new.isEmpty { tell.say(.inboxWritten(new.map(\.key))) }
        return answers
    }

    /// Starts the responder of every `.startResponder` decision, all at once; the error of each
    /// start that failed, by index.
    private func startResponders(_ decisions: [SessionInbound.Decision], on starter: any ResponderStarter) async -> [Int: any Error] {
        await withTaskGroup(of: (Int, (any Error)?).self) { group in
            for (index, decision) in decisions.enumerated() {
                guard case .startResponder(let flowName, let session) = decision else { continue }
                group.addTask {
                    do {
                        try await starter.startResponder(flowName: flowName, arguments: try starter.registry.responderArguments(flowName, session),
                                                         clientRequestId: SessionInbound.responderRequestId(session.id))
                        return (index, nil)
                    } catch {
                        return (index, error)
                    }
                }
            }
            var failures = [Int: any Error]()
            for await (index, error) in group { failures[index] = error }
            return failures
        }
    }
}

// A `Mutex` holds these closures inside a struct, never bare (nor in an optional or a tuple):
// Swift wraps a bare function value in two more reabstraction thunks each time `withLock` passes
// it through its generic `inout`, and stores the wrapped one back. Every delivery made the next
// call slower (a node's CPU a payment grew with its age), until one overflowed the stack (about
// 130,000 reads with 8 MB stacks): `SessionHubRepeatedUseTests`.

/// Where a hub starts responders (`attach`).
private struct StarterChoice: Sendable {
    let choose: @Sendable () -> (any ResponderStarter)?
}

/// Whom a hub tells what it wrote, once `announce` named it.
private final class Announcer: Sendable {
    struct Listener: Sendable { let hear: @Sendable (SessionNews) -> Void }
    let listener = Mutex<Listener?>(nil)
    func say(_ news: SessionNews) { listener.withLock { $0 }?.hear(news) }
}

/// What one process of a node tells the others that share its database (a hot-hot node's bus).
public enum SessionNews: Sendable, Equatable {
    /// Messages under these keys are in the inbox now.
    case inboxWritten([SessionMessageKey])
    /// The outbox has new messages.
    case outboxWritten
}
