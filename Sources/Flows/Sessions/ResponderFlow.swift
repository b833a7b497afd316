import Sessions

/// A flow a node starts when a peer's flow opens a session with one of its parties: it is made
/// with its end of the session, and registered for the initiating flow and version it answers
/// (`FlowRegistry.registerResponder`).
public protocol ResponderFlow: Flow {
    init(session: FlowSession)
    /// Its end of the session it was started for.
    var session: FlowSession { get }
}

/// Where a node's session hub starts the responders peers' messages ask for (`SessionHub.attach`):
/// a flow engine, which runs each at once, or a hot-hot worker without the flow role, which queues
/// each for the process serving its partition.
public protocol ResponderStarter: Sendable {
    /// The flows it knows, with the responder registered for each initiator.
    var registry: FlowRegistry { get }
    /// Starts responder `flowName` with `arguments` under `clientRequestId` (one per session); the
    /// flow that id names already, if it is this start (`FlowEngineError.clientRequestIdReused` if not).
    func startResponder(flowName: String, arguments: [UInt8], clientRequestId: String) async throws
    /// Whether the node has a flow with this id (running or ended).
    func hasFlow(_ id: FlowID) async throws -> Bool
}

extension FlowEngine: ResponderStarter {
    public func startResponder(flowName: String, arguments: [UInt8], clientRequestId: String) async throws {
        _ = try await startReporting(flowName: flowName, arguments: arguments, clientRequestId: clientRequestId, responder: true)
    }

    public func hasFlow(_ id: FlowID) async throws -> Bool { try await record(id) != nil }
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
