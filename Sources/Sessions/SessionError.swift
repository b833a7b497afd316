/// Why a session cannot go on, as the flow that uses it sees it (thrown by `receive`, `send` and
/// `sendAndReceive`) and as an `error` message carries it to the counterparty. A flow may catch
/// it; one that does not fails with its description (the hospital does not retry it).
public struct SessionError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    /// Stable, machine-readable codes (`docs/sessions.md`).
    public enum Code: String, Sendable, Codable, CaseIterable {
        /// The counterparty closed the session (or its flow completed): it sends nothing more.
        case sessionClosed = "session_closed"
        /// The counterparty's flow failed or was killed.
        case counterpartyFailed = "counterparty_failed"
        /// Nothing came from the counterparty within the session timeout.
        case sessionTimeout = "session_timeout"
        /// The counterparty's node has no responder for the initiating flow and version.
        case noResponder = "no_responder"
        /// The flow used a session it closed, or one it did not open.
        case sessionNotOpen = "session_not_open"
        /// The counterparty sent a message the protocol does not allow here.
        case protocolViolation = "protocol_violation"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// A flow's end of one session: what a flow holds and passes to `send`, `receive` and `close`.
/// A responder flow is started with its end of the session as its argument.
public struct FlowSession: Sendable, Hashable, Codable {
    /// Unique in the network: the initiating flow's id and the effect that opened the session.
    public var id: String
    /// The party this side speaks as (a party this node hosts).
    public var ourParty: String
    public var counterparty: String
    public var isInitiator: Bool

    public init(id: String, ourParty: String, counterparty: String, isInitiator: Bool) {
        self.id = id
        self.ourParty = ourParty
        self.counterparty = counterparty
        self.isInitiator = isInitiator
    }
}
