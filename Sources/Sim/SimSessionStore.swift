import Flows
import HawserCore
import Sessions

/// What a simulated flow is: a payment from this node's party, or the responder to one.
enum SimFlowKind: Equatable {
    case pay(payee: String, amount: Int)
    case receive(FlowSession)
}

/// A change a flow's write makes beside its journal entry or its state (`LocalEffect` of the
/// real store): an outbox row, or a change of the node's party's token balance. `tag` names the
/// change, so that the checks see one applied twice.
enum SimEffect: Equatable {
    case outbox(SessionMessage)
    case balance(Int, tag: String)
}

/// One write of a node database transaction.
enum SimWrite {
    /// A flow's start, unless one with `requestId` exists (then that one is the flow).
    case start(FlowID, requestId: String, SimFlowKind)
    case journal(FlowID, JournalEntry, [SimEffect])
    case state(FlowID, FlowState, [SimEffect])
    /// A peer's message, unless one with its key is there already; kept only while its
    /// session's flow here runs.
    case inbox(SessionMessage)
    /// Deletes the inbox messages of sessions no flow here runs (`SessionStore.pruneInbox`).
    case pruneInbox
    /// An outbox row the recipient's node has: deleted.
    case acknowledge(String)
    /// Effects written apart from any journal entry (only the mutation `effectsApart` does).
    case apart([SimEffect])

    /// A flow's journal entry or state (what its local effects ride on).
    var isFlows: Bool {
        switch self {
        case .journal, .state: true
        default: false
        }
    }

    var addsOutbox: Bool {
        switch self {
        case .journal(_, _, let effects), .state(_, _, let effects): effects.contains { if case .outbox = $0 { true } else { false } }
        default: false
        }
    }
}

/// A node database in memory (flows, journals, inbox, outbox, the party's balance), as the
/// SQLite and PostgreSQL stores keep them: a transaction is all or nothing, and what committed
/// survives a crash. It also notes what the checks need: a flow ended twice, a balance change
/// applied twice, two responders for one session.
struct SimSessionStore {
    struct StoredFlow {
        var kind: SimFlowKind
        var requestId: String
        var journal: [JournalEntry] = []
        var state: FlowState
    }

    /// When set, a start never finds an earlier one with its request id (`responderPerDelivery`).
    let startsAlways: Bool
    /// When set, a pruning deletes every inbox message, ended flow or not (`pruneLive`).
    let prunesLive: Bool
    private(set) var flows: [FlowID: StoredFlow] = [:]
    /// Flow ids in the order started (for a deterministic restart).
    private(set) var order: [FlowID] = []
    private var byRequest: [String: FlowID] = [:]
    private(set) var outbox: [(id: String, message: SessionMessage)] = []
    private(set) var inbox: [SessionMessageKey: SessionMessage] = [:]
    private(set) var balance: Int
    /// Every balance change applied, by tag.
    private(set) var applied: [String: Int] = [:]
    /// Responders by session id.
    private(set) var responders: [String: FlowID] = [:]

    init(balance: Int, startsAlways: Bool, prunesLive: Bool) {
        self.balance = balance
        self.startsAlways = startsAlways
        self.prunesLive = prunesLive
    }

    /// Whether a flow here that `session` belongs to (`SessionInbound.initiatorFlowId`,
    /// `responderRequestId`) runs, as the real stores tell: only then is a message of it kept,
    /// and pruned once none runs (two parties of the node in a session have both flows here).
    func sessionRuns(_ session: String) -> Bool {
        let initiator = SessionInbound.initiatorFlowId(of: session).map(FlowID.init)
        let responder = byRequest[SessionInbound.responderRequestId(session)]
        return [initiator, responder].contains { id in id.flatMap { flows[$0].map { !$0.state.status.isTerminal } } ?? false }
    }

    /// The flow a start with `requestId` made, if one did.
    func flow(requestId: String) -> FlowID? { byRequest[requestId] }

    /// The flows not ended, in the order they started.
    var unfinished: [FlowID] { order.filter { !(flows[$0]?.state.status.isTerminal ?? true) } }

    /// What `FlowTransition` asks for in `readDurable`.
    func durable(_ id: FlowID) -> FlowTransition.Durable {
        guard let flow = flows[id] else { return .absent }
        guard !flow.state.status.isTerminal else {
            return .ended(FlowRecord(id: id, clientRequestId: flow.requestId, flowName: "sim", arguments: [], status: flow.state.status,
                                     result: flow.state.result, error: flow.state.error, attempts: flow.state.attempts,
                                     createdAt: flow.state.updatedAt, updatedAt: flow.state.updatedAt))
        }
        return .unfinished(flow.journal)
    }

    /// What became of a transaction.
    enum Applied {
        /// It was made; the broken rules it showed (empty if none).
        case made(broken: [String])
        /// It broke a constraint (a journal entry that exists), so nothing of it was made.
        case refused(String)
    }

    /// Applies one transaction, all or nothing, as the real stores do: a journal entry is keyed by
    /// its flow and sequence (a commit that was made but whose answer was lost is refused when
    /// the engine makes it again).
    mutating func apply(_ writes: [SimWrite], at now: Instant) -> Applied {
        var keys = Set<String>()
        for case .journal(let id, let entry, _) in writes {
            let key = "\(id)#\(entry.sequence)"
            if !keys.insert(key).inserted || flows[id]?.journal.contains(where: { $0.sequence == entry.sequence }) == true {
                return .refused("journal entry \(entry.sequence) of flow \(id) exists")
            }
        }
        var broken: [String] = []
        for write in writes {
            switch write {
            case .start(let id, let requestId, let kind):
                if !startsAlways, byRequest[requestId] != nil { continue }
                if case .receive(let session) = kind {
                    if let other = responders[session.id] { broken.append("session \(session.id) has two responders, \(other) and \(id)") }
                    responders[session.id] = id
                }
                byRequest[requestId] = id
                flows[id] = StoredFlow(kind: kind, requestId: requestId, state: FlowState(status: .running, attempts: 0, updatedAt: now))
                order.append(id)
            case .journal(let id, let entry, let effects):
                guard var flow = flows[id] else { broken.append("a journal entry for \(id), which was never started"); continue }
                if flow.state.status.isTerminal { broken.append("flow \(id) wrote journal entry \(entry.sequence) after it ended") }
                flow.journal.append(entry)
                flows[id] = flow
                broken += apply(effects)
            case .state(let id, let state, let effects):
                guard var flow = flows[id] else { broken.append("a state for \(id), which was never started"); continue }
                if flow.state.status.isTerminal {
                    broken.append("flow \(id) ended twice: \(flow.state.status.rawValue), then \(state.status.rawValue)")
                }
                flow.state = state
                if state.status.isTerminal { flow.journal = [] }  // compacted
                flows[id] = flow
                broken += apply(effects)
            case .inbox(let message):
                if inbox[message.key] == nil, sessionRuns(message.session) { inbox[message.key] = message }
            case .pruneInbox:
                let pruned = inbox.keys.filter { prunesLive || !sessionRuns($0.session) }.sorted { $0.description < $1.description }
                // The rule pruning keeps: a running flow may still take (again, after a crash) any
                // message of its sessions.
                if let live = pruned.first(where: { sessionRuns($0.session) }) {
                    broken.append("the inbox message \(live) was pruned while its session's flow runs")
                }
                for key in pruned { inbox[key] = nil }
            case .acknowledge(let id):
                outbox.removeAll { $0.id == id }
            case .apart(let effects):
                broken += apply(effects)
            }
        }
        return .made(broken: broken)
    }

    private mutating func apply(_ effects: [SimEffect]) -> [String] {
        var broken: [String] = []
        for effect in effects {
            switch effect {
            case .outbox(let message):
                let id = message.key.description
                // A row has a fixed id and is written once (`OutboxMessage`).
                if !outbox.contains(where: { $0.id == id }) { outbox.append((id, message)) }
            case .balance(let change, let tag):
                if applied[tag] != nil { broken.append("balance change \(tag) applied twice") }
                applied[tag, default: 0] += change
                balance += change
            }
        }
        return broken
    }
}
