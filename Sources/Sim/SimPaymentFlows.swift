import Flows
import HawserCore
import Sessions

/// What a simulated flow's run holds between its steps: its journal (durable and recorded since),
/// the writes not yet committed, and its sessions as the journal drove them.
struct SimFlowRun {
    var journal: [JournalEntry]
    var pending: [SimWrite] = []
    var cores: [String: SessionCore] = [:]
    /// The message a `receive` gave up waiting for (the session timeout passed).
    var timedOut: SessionMessageKey?
}

/// Why a flow's body stopped before its end: it waits for a commit of its pending writes, or for
/// a message.
enum SimFlowNeed {
    case commit([SimWrite])
    case message(SessionMessageKey)
}

/// `FlowContext` for the simulation's flows, synchronous: the body runs from its start each time
/// it resumes, taking every effect already recorded from the journal (the real `Replay` checks
/// that it asks for the same), and throws `Suspended` where the real context would await. What
/// is journaled, what is committed when, and what the sessions send are the real context's rules
/// (`FlowContext`, `FlowContext+Sessions`).
final class SimFlowContext {
    struct Suspended: Error {}

    let flowId: FlowID
    let party: String
    private(set) var run: SimFlowRun
    private var replay: Replay
    private let inbox: (SessionMessageKey) -> SessionMessage?
    /// With the mutation `effectsApart`: balance changes are not journaled with their entry but
    /// collected here, for the shell to write at once.
    private let effectsApart: Bool
    private(set) var apart: [SimEffect] = []
    private(set) var need: SimFlowNeed?

    init(flowId: FlowID, party: String, run: SimFlowRun, inbox: @escaping (SessionMessageKey) -> SessionMessage?, effectsApart: Bool) {
        self.flowId = flowId
        self.party = party
        self.run = run
        self.inbox = inbox
        self.effectsApart = effectsApart
        replay = Replay(journal: run.journal)
    }

    /// `FlowContext.Durability`'s `local`, and `outside(resultDeferred: true)` as `receive` uses
    /// it: the earlier writes are made durable first; either way the entry waits for the flow's
    /// next write.
    enum Durability { case local, outside }

    /// `FlowContext.effect` for these durabilities.
    func effect<T: Codable & Sendable>(_ kind: String, _ descriptor: String, _ durability: Durability,
                                       local: (Int, T) -> [SimEffect] = { _, _ in [] }, _ body: (Int) throws -> T) throws -> T {
        switch try replay.next(kind: kind, descriptor: descriptor) {
        case .replay(let bytes):
            return try FlowCoding.decode(T.self, bytes)
        case .execute(let sequence):
            if durability == .outside, !run.pending.isEmpty { return try suspend(.commit(run.pending)) }
            let value = try body(sequence)
            let entry = JournalEntry(sequence: sequence, kind: kind, descriptor: descriptor, result: try FlowCoding.encode(value))
            var effects = local(sequence, value)
            if effectsApart {
                apart += effects.filter { if case .balance = $0 { true } else { false } }
                effects.removeAll { if case .balance = $0 { true } else { false } }
            }
            run.pending.append(.journal(flowId, entry, effects))
            run.journal.append(entry)
            replay.record(entry)
            return value
        }
    }

    private func suspend<T>(_ need: SimFlowNeed) throws -> T {
        self.need = need
        throw Suspended()
    }

    // MARK: Sessions, as `FlowContext+Sessions`

    func initiate(_ counterparty: String, flowName: String) throws -> FlowSession {
        let announced = SessionMessage.Initiator(flowName: flowName, version: 1)
        let flow = flowId.rawValue, me = party
        let id: String = try effect(EffectKind.initiate, "\(party)>\(counterparty):\(flowName)@1", .local,
                                    local: { _, id in [.outbox(SessionCore.opening(id, as: me, with: counterparty, for: announced).initiate)] }) {
            sequence in SessionInbound.sessionId(flow: flow, effect: sequence)
        }
        let core = SessionCore.opening(id, as: party, with: counterparty, for: announced).core
        run.cores[id] = core
        return core.session
    }

    func send(_ payload: [UInt8], on session: FlowSession) throws {
        var core = try core(of: session)
        let message = try core.send(payload)
        let _: Nothing = try effect(EffectKind.send, "\(message.key)#\(SecureHash.sha256(payload).hex)", .local,
                                    local: { _, _ in [.outbox(message)] }) { _ in Nothing() }
        run.cores[session.id] = core
    }

    func receive(on session: FlowSession) throws -> [UInt8] {
        var core = try core(of: session)
        let key = try core.awaited()
        let found: SessionCore.Received = try effect(EffectKind.receive, key.description, .outside) { _ in
            if let message = inbox(key) { return .message(message) }
            if run.timedOut == key { return .timedOut }
            return try suspend(.message(key))
        }
        defer { run.cores[session.id] = core }
        return try core.take(found)
    }

    /// A change of this node's party's balance (a local effect, journaled).
    func changeBalance(by change: Int, _ why: String) throws {
        let tag = "\(why):\(flowId)"
        let _: Nothing = try effect(EffectKind.record, "\(why) \(change)", .local,
                                    local: { _, _ in [.balance(change, tag: tag)] }) { _ in Nothing() }
    }

    /// A responder's own session, known from its start (`FlowContext.adopt`).
    func adopt(_ session: FlowSession) {
        if run.cores[session.id] == nil { run.cores[session.id] = .responding(session) }
    }

    /// What the flow sends as it ends in `state`, from its sessions `cores` (`FlowContext.sessionFarewell`).
    static func farewell(_ cores: [String: SessionCore], _ state: FlowState) -> [SimEffect] {
        FlowContext.sessionFarewell(cores, state).map { .outbox($0) }
    }

    private func core(of session: FlowSession) throws(SessionError) -> SessionCore {
        if let core = run.cores[session.id] { return core }
        guard !session.isInitiator else { throw SessionError(.sessionNotOpen, "session \(session.id) was not opened by this flow") }
        return .responding(session)
    }
}

/// The flows the simulated nodes run.
enum SimPaymentFlows {
    static let payName = "Pay"
    static let paid = Array("\"paid\"".utf8)
    static let refused = Array("\"refused\"".utf8)
    static let received = Array("\"received\"".utf8)

    /// A payee's node takes no amount divisible by this: the responder fails, the payer is refunded.
    static let refusedDivisor = 5

    static func body(_ kind: SimFlowKind, _ context: SimFlowContext) throws -> [UInt8] {
        switch kind {
        case .pay(let payee, let amount): try pay(payee, amount, context)
        case .receive(let session): try receive(session, context)
        }
    }

    /// Debits the payer, sends the amount and waits for the receipt; refunds if the payee refused.
    static func pay(_ payee: String, _ amount: Int, _ context: SimFlowContext) throws -> [UInt8] {
        let session = try context.initiate(payee, flowName: payName)
        try context.changeBalance(by: -amount, "debit")
        try context.send(Array(String(amount).utf8), on: session)
        do {
            _ = try context.receive(on: session)
            return paid
        } catch let error as SessionError where error.code == .counterpartyFailed {
            try context.changeBalance(by: amount, "refund")
            return refused
        }
    }

    /// Takes the amount, credits the payee and sends a receipt; refuses some amounts.
    static func receive(_ session: FlowSession, _ context: SimFlowContext) throws -> [UInt8] {
        let amount = Int(String(decoding: try context.receive(on: session), as: UTF8.self)) ?? 0
        guard amount % refusedDivisor != 0 else { throw FlowFailure("\(session.ourParty) takes no amount divisible by \(refusedDivisor)") }
        try context.changeBalance(by: amount, "credit")
        try context.send(Array("receipt".utf8), on: session)
        return received
    }
}
