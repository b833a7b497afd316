import HawserCore
import Sessions

/// Flow sessions (`docs/sessions.md`): a flow opens a session with a party on another node (or
/// this one), sends and receives messages in order, exactly once, and closes it. Every call is
/// an effect: a message sent is an outbox row committed with its journal entry; a message
/// received is journaled, so a replay takes the same messages in the same order. The session's
/// rules are `SessionCore`'s, driven by the journal.
extension FlowContext {
    /// Opens a session with `counterparty`, speaking as `ourParty` (a party this node hosts), for
    /// the initiating flow `initiator` (whose name and `flowVersion` pick the responder there).
    /// Its `initiate` message goes out with the flow's next durable write.
    public func initiateFlow<F: Flow>(with counterparty: String, as ourParty: String, by initiator: F.Type) async throws -> FlowSession {
        // Both ends would write the same inbox keys (session, sender, sequence): each would take
        // its own messages for the other's.
        guard counterparty != ourParty else { throw FlowFailure("\(ourParty) cannot open a session with itself") }
        let announced = SessionMessage.Initiator(flowName: F.flowName, version: F.flowVersion)
        let flow = flowId.rawValue
        let id = try await effect(EffectKind.initiate, "\(ourParty)>\(counterparty):\(announced.flowName)@\(announced.version)",
                                  durability: .local,
                                  local: { _, id in
                                      [.outbox(OutboxMessage(SessionCore.opening(id, as: ourParty, with: counterparty, for: announced).initiate))]
                                  }) { sequence in SessionInbound.sessionId(flow: flow, effect: sequence) }
        let core = SessionCore.opening(id, as: ourParty, with: counterparty, for: announced).core
        sessionCores.withLock { $0[id] = core }
        return core.session
    }

    /// Sends `payload` to the counterparty: written to the outbox with the flow's next durable
    /// write, delivered exactly once and in order. Throws `SessionError` if the session is not open.
    public func send(_ payload: [UInt8], on session: FlowSession) async throws {
        var core = try self.core(of: session)
        let message = try core.send(payload)
        _ = try await effect(EffectKind.send, "\(message.key)#\(SecureHash.sha256(payload).hex)", durability: .local,
                         local: { _, _ in [.outbox(OutboxMessage(message))] }) { _ in Nothing() }
        sessionCores.withLock { $0[session.id] = core }
    }

    /// Waits for the counterparty's next message and returns its payload. Throws `SessionError`
    /// when the counterparty closed the session or failed, or nothing came within the session
    /// timeout; the flow's earlier writes are durable (and its messages on their way) first.
    /// What was taken is journaled with the flow's next write, not at once: the message stays in
    /// the inbox under its key, so a flow replayed before that write takes the same one again
    /// (and a timeout not yet written is waited for afresh, as nothing outside saw it).
    public func receive(on session: FlowSession) async throws -> [UInt8] {
        guard let sessions = services.sessions else { throw MissingServiceError("sessions") }
        var core = try self.core(of: session)
        let key = try core.awaited()
        let found = try await effect(EffectKind.receive, key.description,
                                     durability: .outside(resultDeferred: true)) { _ -> SessionCore.Received in
            guard let message = try await sessions.receive(key, timeout: sessions.timeout) else { return .timedOut }
            return .message(message)
        }
        defer { sessionCores.withLock { $0[session.id] = core } }
        return try core.take(found)
    }

    /// `send` then `receive`.
    public func sendAndReceive(_ payload: [UInt8], on session: FlowSession) async throws -> [UInt8] {
        try await send(payload, on: session)
        return try await receive(on: session)
    }

    /// Closes the session: the counterparty's next `receive` throws `session_closed`. Closing a
    /// session that is not open does nothing. A flow that ends closes its open sessions itself.
    public func close(_ session: FlowSession) async throws {
        var core = try self.core(of: session)
        guard let message = core.close() else { return }
        _ = try await effect(EffectKind.close, message.key.description, durability: .local,
                         local: { _, _ in [.outbox(OutboxMessage(message))] }) { _ in Nothing() }
        sessionCores.withLock { $0[session.id] = core }
    }

    /// What the flow sends as it ends in `state`: `close` on each session still open if it
    /// completed, an `error` if it failed or was killed; nothing otherwise (a hospitalised flow
    /// runs again). Committed with the flow's final state.
    func sessionFarewell(_ state: FlowState) -> [LocalEffect] {
        Self.sessionFarewell(sessionCores.withLock { $0 }, state).map { .outbox(OutboxMessage($0)) }
    }

    /// The messages `cores` (a flow's sessions) send as the flow ends in `state`. Pure, and it
    /// reads copies: the engine may ask again when the end's commit failed, and the counterparty
    /// must still be told then. The simulation (`Sim`) uses it too.
    public static func sessionFarewell(_ cores: [String: SessionCore], _ state: FlowState) -> [SessionMessage] {
        let failure: SessionError?
        switch state.status {
        case .completed: failure = nil
        case .failed: failure = SessionError(.counterpartyFailed, "the counterparty's flow failed: \(state.error ?? "")")
        case .killed: failure = SessionError(.counterpartyFailed, "the counterparty's flow was killed by an operator")
        case .running, .hospitalised: return []
        }
        return cores.keys.sorted().compactMap { id in
            var core = cores[id]
            return core?.farewell(failure: failure)
        }
    }

    /// The session's state. A responder's session is known from its first use; an initiator's
    /// must have been opened by this flow.
    private func core(of session: FlowSession) throws(SessionError) -> SessionCore {
        if let core = sessionCores.withLock({ $0[session.id] }) { return core }
        guard !session.isInitiator else {
            throw SessionError(.sessionNotOpen, "session \(session.id) was not opened by this flow")
        }
        return .responding(session)
    }

    /// A responder's own session, known from its start: ended unused, it is still closed.
    func adopt(_ session: FlowSession) {
        sessionCores.withLock { cores in
            if cores[session.id] == nil { cores[session.id] = .responding(session) }
        }
    }
}
