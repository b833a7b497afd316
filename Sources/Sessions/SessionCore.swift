/// The rules of one session at one side, sans-I/O: which sequence number the next message sent
/// gets, which one the flow waits for next, what a message taken means (a payload, the
/// counterparty's close or failure, a timeout), and what the side sends when its flow ends.
/// The flow's journal drives it: every call is made again, in the same order, when the flow is
/// replayed, so the state after a replay is the state before the crash.
///
/// Dedup and order rest on the sequence numbers: the inbox keeps each `(session, sender,
/// sequence)` once, and the flow takes exactly the next number, so a message delivered twice is
/// taken once and a message delivered early waits its turn.
public struct SessionCore: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case open
        /// This side closed the session: it sends and receives nothing more.
        case closed
        /// The counterparty closed or failed, or broke the protocol.
        case ended(SessionError)
        /// Nothing came from the counterparty within the session timeout. The counterparty is
        /// told when this side's flow ends (`farewell`), so that it does not wait out a timeout
        /// of its own for a side that no longer listens.
        case timedOut(SessionError)
    }

    /// What a `receive` found: the message, or nothing within the timeout. Journaled as the
    /// receive's result.
    public enum Received: Sendable, Equatable, Codable {
        case message(SessionMessage)
        case timedOut
    }

    public let session: FlowSession
    /// Messages this side has sent (the last sequence number used).
    public private(set) var sent: Int
    /// Messages this side has taken from the counterparty.
    public private(set) var received: Int
    public private(set) var phase: Phase = .open

    /// The initiating side, before its `initiate` message.
    public static func initiating(_ session: FlowSession) -> SessionCore { SessionCore(session: session, sent: 0, received: 0) }

    /// The responding side: the counterparty's `initiate` (message 1) is what started it.
    public static func responding(_ session: FlowSession) -> SessionCore { SessionCore(session: session, sent: 0, received: 1) }

    /// The initiating side of session `id`, with the `initiate` message that opens it.
    public static func opening(_ id: String, as ourParty: String, with counterparty: String,
                               for initiator: SessionMessage.Initiator) -> (core: SessionCore, initiate: SessionMessage) {
        var core = initiating(FlowSession(id: id, ourParty: ourParty, counterparty: counterparty, isInitiator: true))
        let initiate = core.initiate(initiator)
        return (core, initiate)
    }

    private init(session: FlowSession, sent: Int, received: Int) {
        self.session = session
        self.sent = sent
        self.received = received
    }

    /// The initiating side's first message, which opens the session at the counterparty.
    public mutating func initiate(_ initiator: SessionMessage.Initiator) -> SessionMessage {
        precondition(session.isInitiator && sent == 0, "a session is initiated once, by its initiator")
        return next(.initiate, initiator: initiator)
    }

    /// The message that carries `payload`; refused unless the session is open.
    public mutating func send(_ payload: [UInt8]) throws(SessionError) -> SessionMessage {
        try requireOpen()
        return next(.data, payload: payload)
    }

    /// The key of the message the flow waits for next; refused unless the session is open.
    public func awaited() throws(SessionError) -> SessionMessageKey {
        try requireOpen()
        return SessionMessageKey(session: session.id, sender: session.counterparty, sequence: received + 1)
    }

    /// Takes what `receive` found for `awaited()`: a data message's payload, else the error that
    /// ends the session (the counterparty's close or failure, the timeout, a message out of protocol).
    public mutating func take(_ found: Received) throws(SessionError) -> [UInt8] {
        let expected = try awaited()
        guard case .message(let message) = found else {
            let error = SessionError(.sessionTimeout, "nothing came from \(session.counterparty) in session \(session.id) within the session timeout")
            phase = .timedOut(error)
            throw error
        }
        guard message.key == expected, message.recipient == session.ourParty else {
            throw end(SessionError(.protocolViolation, "expected message \(expected), got \(message.key) for \(message.recipient)"))
        }
        received += 1
        switch message.kind {
        case .data:
            return [UInt8](message.payload)
        case .close:
            throw end(SessionError(.sessionClosed, "\(session.counterparty) closed session \(session.id)"))
        case .error:
            throw end(message.error ?? SessionError(.counterpartyFailed, "\(session.counterparty) ended session \(session.id) with an error"))
        case .initiate:
            throw end(SessionError(.protocolViolation, "\(session.counterparty) sent a second initiate in session \(session.id)"))
        }
    }

    /// Closes the session: the `close` message to send, or nil if it was not open (closing twice
    /// is harmless).
    public mutating func close() -> SessionMessage? {
        guard phase == .open else { return nil }
        defer { phase = .closed }
        return next(.close)
    }

    /// What this side sends when its flow ends with the session still open: `close` if the flow
    /// completed, else an `error` with `failure`; with the session timed out here, an `error`
    /// with `session_timeout` that says so; nil otherwise.
    public mutating func farewell(failure: SessionError?) -> SessionMessage? {
        switch phase {
        case .open:
            guard let failure else { return close() }
            phase = .closed
            return next(.error, error: failure)
        case .timedOut(let error):
            phase = .ended(error)
            return next(.error, error: SessionError(.sessionTimeout, "\(session.ourParty) heard nothing from "
                                                    + "\(session.counterparty) in session \(session.id) within its session timeout"))
        case .closed, .ended:
            return nil
        }
    }

    private func requireOpen() throws(SessionError) {
        switch phase {
        case .open: return
        case .closed: throw SessionError(.sessionNotOpen, "session \(session.id) was closed by this flow")
        case .ended(let error), .timedOut(let error): throw error
        }
    }

    private mutating func end(_ error: SessionError) -> SessionError {
        phase = .ended(error)
        return error
    }

    private mutating func next(_ kind: SessionMessage.Kind, payload: [UInt8] = [], initiator: SessionMessage.Initiator? = nil,
                               error: SessionError? = nil) -> SessionMessage {
        sent += 1
        return SessionMessage(session: session.id, sender: session.ourParty, recipient: session.counterparty, sequence: sent,
                              kind: kind, payload: payload, initiator: initiator, error: error)
    }
}
