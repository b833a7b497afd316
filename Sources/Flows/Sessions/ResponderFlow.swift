import Sessions

/// A flow a node starts when a peer's flow opens a session with one of its parties: it is made
/// with its end of the session, and registered for the initiating flow and version it answers
/// (`FlowRegistry.registerResponder`).
public protocol ResponderFlow: Flow {
    init(session: FlowSession)
    /// Its end of the session it was started for.
    var session: FlowSession { get }
}

extension FlowRegistry {
    /// Registers `responder` (as a flow too) to answer sessions that `initiator`, at its current
    /// `flowVersion`, opens. A later registration for the same initiator and version replaces it.
    public mutating func registerResponder<R: ResponderFlow, I: Flow>(_ responder: R.Type, for initiator: I.Type) {
        register(R.self)
        responders[SessionMessage.Initiator(flowName: I.flowName, version: I.flowVersion)] = R.flowName
        responderArguments[R.flowName] = { try FlowCoding.encode(R(session: $0)) }
    }

    /// The responder registered for `initiator`, if any.
    public func responder(for initiator: SessionMessage.Initiator) -> String? { responders[initiator] }

    /// The stored arguments of responder `flowName` for `session`.
    func responderArguments(_ flowName: String, _ session: FlowSession) throws -> [UInt8] {
        guard let make = responderArguments[flowName] else { throw FlowEngineError.unknownFlow(flowName) }
        return try make(session)
    }
}
