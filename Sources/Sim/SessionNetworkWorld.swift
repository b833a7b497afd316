import Flows
import HawserCore
import Sessions

/// The state of one `SessionNetworkSim` run: the nodes (each a durable store and what its process
/// holds), the pending events, the fault plan and the checks.
struct SessionNetworkWorld {
    enum Event {
        /// A client asks node `node` to start payment `number` (retried until answered), or to
        /// start a new one (-1).
        case pay(Int, number: Int)
        case commitDone(Int, incarnation: Int, commit: Int)
        /// A flow's hospital delay or its receive's session timeout (`token` names the wait).
        case flowTimer(Int, incarnation: Int, FlowID, token: Int)
        /// A delivery of `message` from node `from`'s link (its try `attempt`) reaches node `node`.
        case arrive(Int, from: Int, incarnation: Int, attempt: Int, SessionMessage)
        case answer(Int, incarnation: Int, attempt: Int, DeliveryAnswer)
        case deliveryTimeout(Int, incarnation: Int, attempt: Int)
        case linkPoll(Int, incarnation: Int)
        /// The node prunes its inbox (every `inboxPruneInterval`).
        case prune(Int, incarnation: Int)
        /// Node `node` dies with a flow's commit in flight (`SessionFault.crash`).
        case crash(Int, incarnation: Int, restartAt: Int64)
        case restart(Int)
        case fault
        case quiet
    }

    /// What follows a commit, once it is made (or failed).
    enum AfterCommit {
        /// A client's start of payment `number`.
        case started(number: Int)
        /// A flow's body waits for it.
        case body(FlowID, token: Int)
        /// A flow's action (`commitEnd`, `recordEnd`, `record`, ...) waits for it; with `isEnd`,
        /// the machine hears whether it was made.
        case action(FlowID, token: Int, isEnd: Bool)
        /// An arriving message: its responder's start, then its inbox row, then the answer.
        case accepting(from: Int, incarnation: Int, attempt: Int, SessionMessage, stored: Bool)
        /// The link manager's acknowledgement of an outbox row.
        case acknowledged(peer: String)
        /// Nothing waits.
        case none
    }

    struct Commit {
        var writes: [SimWrite]
        var then: AfterCommit
        var fault: SessionFault?
    }

    /// A flow this node's process runs, as `FlowEngine.execute` holds it.
    struct LiveFlow {
        var kind: SimFlowKind
        var machine: FlowTransition.State
        var actions: [FlowTransition.Action] = []
        var next: FlowTransition.Event?
        var run: SimFlowRun?
        /// Names what the flow waits for; events of older waits are stale.
        var token = 0
        var waitingFor: SessionMessageKey?
    }

    struct Node: SimProcess {
        let party: String
        var store: SimSessionStore
        var alive = true
        var incarnation = 0
        var pausedUntil: Int64 = 0
        var cutOffUntil: Int64 = 0
        var flows: [FlowID: LiveFlow] = [:]
        var commits: [Int: Commit] = [:]
        /// The fault the next commit meets (`lostAnswer`, `failedCommit`).
        var commitFault: SessionFault?
        /// Die while the next commit of a flow is under way, and restart this long after.
        var crashAtFlowCommit: Int64?
        var backoff: LinkBackoff
        /// The delivery in flight to each recipient: its try (0 once answered) and outbox row.
        var delivering: [String: (attempt: Int, id: String)] = [:]
        var flowsMade = 0
    }

    struct Payment {
        var payer: Int
        var payee: Int
        var amount: Int
        var flow: FlowID?
    }

    let seed: UInt64
    let settings: SessionNetworkSim.Settings
    var random: SeededGenerator
    var queue = EventQueue<Event>()
    var nodes: [Node] = []
    var payments: [Payment] = []
    var trace: SimTrace
    var now: Int64 = 0
    var events = 0
    var faults = 0
    var deliveries = 0
    var commitsMade = 0
    var attempts = 0
    var quiet = false
    /// What the clients were told (docs/history.md), for `HistoryChecker`.
    var history: [History.Event] = []

    init(seed: UInt64, settings: SessionNetworkSim.Settings) {
        self.seed = seed
        self.settings = settings
        random = SeededGenerator(seed: seed)
        trace = SimTrace(keep: settings.traceLines)
        for index in 0..<settings.nodes {
            nodes.append(Node(party: Self.party(index),
                              store: SimSessionStore(balance: settings.balance, startsAlways: settings.mutation == .responderPerDelivery,
                                                     prunesLive: settings.mutation == .pruneLive),
                              backoff: LinkBackoff(policy: settings.backoff)))
            queue.schedule(.linkPoll(index, incarnation: 0), at: 0)
            queue.schedule(.prune(index, incarnation: 0), at: settings.inboxPruneInterval.nanosecondsValue)
            queue.schedule(.pay(index, number: -1), at: paymentGap())
        }
    }

    static func party(_ node: Int) -> String { "O=P\(node)" }

    func node(of party: String) -> Int? { nodes.firstIndex { $0.party == party } }

    mutating func run() -> SessionNetworkSim.Outcome {
        let faultyEnd = settings.faulty.nanosecondsValue, end = faultyEnd + settings.quiet.nanosecondsValue
        if !settings.faults.isEmpty { queue.schedule(.fault, at: now + gap()) }
        queue.schedule(.quiet, at: faultyEnd)
        while violation == nil, let (at, event) = queue.pop(), at <= end {
            now = at
            events += 1
            handle(event)
        }
        if violation == nil {
            now = end
            finalChecks()
        }
        let results = payments.compactMap { payment in payment.flow.flatMap { nodes[payment.payer].store.flows[$0]?.state.result } }
        return SessionNetworkSim.Outcome(seed: seed, events: events, digest: trace.digest, faults: faults,
                                         paid: results.filter { $0 == SimPaymentFlows.paid }.count,
                                         refused: results.filter { $0 == SimPaymentFlows.refused }.count,
                                         deliveries: deliveries, violation: violation)
    }

    var instant: Instant { Instant(microsecondsSinceEpoch: now / 1_000) }

    mutating func record(_ line: String) { trace.record(line, at: now) }

    mutating func fail(_ what: String) { trace.fail(what, seed: seed, at: now) }

    var violation: SimViolation? { trace.violation }

    /// Whether the event is for a node's current, running process; a paused one's wait.
    mutating func deliverable(_ index: Int, _ incarnation: Int?, _ event: Event) -> Bool {
        queue.deliverable(event, to: nodes[index], incarnation: incarnation, now: now)
    }

    mutating func handle(_ event: Event) {
        switch event {
        case .pay(let index, let number):
            guard !quiet || number >= 0 else { return }
            let number = number >= 0 ? number : newPayment(from: index)
            guard deliverable(index, nil, .pay(index, number: number)) else {
                if !nodes[index].alive { queue.schedule(.pay(index, number: number), at: now + 200_000_000) }
                return
            }
            startPayment(number)
        case .commitDone(let index, let incarnation, let commit):
            guard deliverable(index, incarnation, event) else { return }
            commitDone(index, commit)
        case .flowTimer(let index, let incarnation, let id, let token):
            guard deliverable(index, incarnation, event), nodes[index].flows[id]?.token == token else { return }
            flowTimer(index, id)
        case .arrive(let index, let from, let incarnation, let attempt, let message):
            guard nodes[index].cutOffUntil <= now, deliverable(index, nil, event) else { return }
            arrive(index, from: from, incarnation: incarnation, attempt: attempt, message)
        case .answer(let index, let incarnation, let attempt, let answer):
            guard nodes[index].cutOffUntil <= now, deliverable(index, incarnation, event) else { return }
            answered(index, attempt: attempt, answer)
        case .deliveryTimeout(let index, let incarnation, let attempt):
            guard deliverable(index, incarnation, event) else { return }
            unanswered(index, attempt: attempt)
        case .linkPoll(let index, let incarnation):
            guard deliverable(index, incarnation, event) else { return }
            linkTurn(index)
            queue.schedule(.linkPoll(index, incarnation: incarnation), at: now + 250_000_000)
        case .prune(let index, let incarnation):
            guard deliverable(index, incarnation, event) else { return }
            commit(index, [.pruneInbox], then: .none)
            queue.schedule(.prune(index, incarnation: incarnation), at: now + settings.inboxPruneInterval.nanosecondsValue)
        case .crash(let index, let incarnation, let restartAt):
            guard nodes[index].alive, nodes[index].incarnation == incarnation else { return }
            record("n\(index) dies during a flow's commit")
            crash(index, restartAt: restartAt)
        case .restart(let index): restart(index)
        case .fault: injectFault()
        case .quiet:
            quiet = true
            record("quiet: no more faults or payments")
        }
    }

    // MARK: Payments

    /// Draws payment `number` of `payer` (to another node, 1...9 tokens) and schedules the next.
    mutating func newPayment(from payer: Int) -> Int {
        var payee = Int.random(in: 0..<(nodes.count - 1), using: &random)
        if payee >= payer { payee += 1 }
        payments.append(Payment(payer: payer, payee: payee, amount: Int.random(in: 1...9, using: &random)))
        queue.schedule(.pay(payer, number: -1), at: now + paymentGap())
        return payments.count - 1
    }

    /// The client's start: written with its request id (a retry finds the first), then run.
    mutating func startPayment(_ number: Int) {
        let payment = payments[number], index = payment.payer
        let requestId = "pay-\(number)"
        record("n\(index) start payment \(number): \(payment.amount) to \(nodes[payment.payee].party)")
        history(.invoke, .start(clientRequestId: requestId, flowId: nil))
        let id = nodes[index].store.flow(requestId: requestId) ?? newFlowId(index)
        commit(index, [.start(id, requestId: requestId, .pay(payee: nodes[payment.payee].party, amount: payment.amount))],
               then: .started(number: number))
    }

    mutating func history(_ kind: History.Kind, _ op: History.Op) {
        history.append(History.Event(line: history.count + 1, kind: kind, op: op))
    }

    mutating func newFlowId(_ index: Int) -> FlowID {
        nodes[index].flowsMade += 1
        return FlowID("n\(index).\(nodes[index].incarnation).\(nodes[index].flowsMade)")
    }

    // MARK: Timing

    /// Time to the next fault: uniform up to twice the mean (as the other worlds draw it).
    mutating func gap() -> Int64 {
        Int64.random(in: 0...(2 * settings.meanGap.nanosecondsValue), using: &random)
    }

    mutating func paymentGap() -> Int64 {
        Int64.random(in: 1...(2 * settings.meanPaymentGap.nanosecondsValue), using: &random)
    }

    /// A store commit's time: 0.2 to 3 ms.
    mutating func commitTime() -> Int64 { Int64.random(in: 200_000...3_000_000, using: &random) }
}
