/// What a node does with a session message that arrives from a peer, sans-I/O. Whatever it
/// decides is idempotent, so a message delivered again is answered the same way and changes
/// nothing more: the responder's start is keyed by the session (`responderRequestId`) and the
/// inbox by the message's key.
public enum SessionInbound {
    public enum Decision: Sendable, Equatable {
        /// Write the message to the inbox, then acknowledge it.
        case store
        /// Start `flowName` (the responder) with its end of the session, then store the message.
        case startResponder(flowName: String, session: FlowSession)
        /// Acknowledge the message without storing it; the sender's node hands `error` to the
        /// sending flow as the counterparty's answer.
        case refuse(SessionError)
    }

    /// Longest session id, in UTF-8 bytes (a flow id and an effect number need about 40).
    public static let maxSessionIdBytes = 160

    /// `responder`: the flow this node registered for an initiating flow and version, if any.
    public static func decide(_ message: SessionMessage, responder: (SessionMessage.Initiator) -> String?) -> Decision {
        guard !message.session.isEmpty, message.session.utf8.count <= maxSessionIdBytes else {
            return .refuse(SessionError(.protocolViolation, "a session id must be 1 to \(maxSessionIdBytes) bytes long"))
        }
        // As a client request id (the responder's is made of it): one with a control character
        // failed the responder's start, which the node answered as if it could take no messages
        // now, and the sender delivered it again for ever (found from outside).
        guard !message.session.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            return .refuse(SessionError(.protocolViolation, "a session id must hold no control character"))
        }
        guard message.sequence >= 1 else {
            return .refuse(SessionError(.protocolViolation, "message sequence numbers start at 1, got \(message.sequence)"))
        }
        guard message.kind == .initiate else { return .store }
        guard message.sequence == 1, let initiator = message.initiator else {
            return .refuse(SessionError(.protocolViolation, "an initiate message must be message 1 and name its flow"))
        }
        guard let flowName = responder(initiator) else {
            return .refuse(SessionError(.noResponder, "\(message.recipient)'s node has no responder for \(initiator.flowName) version \(initiator.version)"))
        }
        return .startResponder(flowName: flowName, session: FlowSession(id: message.session, ourParty: message.recipient,
                                                                        counterparty: message.sender, isInitiator: false))
    }

    /// The counterparty's answer to `sent` that its node refused with `error`, as the sending
    /// flow takes it: an `error` message from the counterparty. Only an `initiate` is answered
    /// so (the refusing node has no such session, so it sent nothing in it: the answer is its
    /// message 1); nil for others, which a node refuses only if the sender breaks the protocol.
    public static func refusal(of sent: SessionMessage, _ error: SessionError) -> SessionMessage? {
        guard sent.kind == .initiate else { return nil }
        return SessionMessage(session: sent.session, sender: sent.recipient, recipient: sent.sender, sequence: 1, kind: .error,
                              error: error)
    }

    /// The client request id a responder is started with: one flow per session, however often
    /// the `initiate` is delivered.
    public static func responderRequestId(_ session: String) -> String { responderRequestPrefix + session }

    /// What a responder's client request id begins with (the session id follows).
    public static let responderRequestPrefix = "session:"

    /// The id of the session a flow opens with its effect `effect`: `<flow id>/<effect>` (flow
    /// ids hold no `/`).
    public static func sessionId(flow: String, effect: Int) -> String { "\(flow)/\(effect)" }

    /// The flow a session belongs to on a node, if the node has one: the initiator's, whose id
    /// is the session id up to its first `/` (`sessionId(flow:effect:)`), or the responder's,
    /// started with `responderRequestId(session)`; both, when two parties of the node are in the
    /// session. A message is kept only while a flow of its session runs here: once none does its
    /// inbox rows are no longer needed, and a message that arrives later, or for a session no
    /// flow here has, is answered `accepted` and not kept. (The stores' SQL splits the id the
    /// same way.)
    public static func initiatorFlowId(of session: String) -> String? {
        session.firstIndex(of: "/").map { String(session[..<$0]) }
    }
}
