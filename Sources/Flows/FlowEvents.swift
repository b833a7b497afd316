/// What observers of a flow hear: its progress steps and its status changes.
public struct FlowEvent: Sendable, Equatable, Codable {
    public var flowId: FlowID
    /// The journal sequence of a progress step (observers use it to drop repeats after a reconnect).
    public var sequence: Int?
    /// The progress step's text.
    public var step: String?
    public var status: FlowStatus?
    /// Why the flow failed, was hospitalised or was killed.
    public var error: String?
    /// With a status: how many times the hospital has retried the flow.
    public var attempts: Int?

    public static func progress(_ id: FlowID, sequence: Int, step: String) -> FlowEvent {
        FlowEvent(flowId: id, sequence: sequence, step: step, status: nil, error: nil, attempts: nil)
    }

    public static func status(_ id: FlowID, _ status: FlowStatus, error: String?, attempts: Int) -> FlowEvent {
        FlowEvent(flowId: id, sequence: nil, step: nil, status: status, error: error, attempts: attempts)
    }

    /// True for the last event of a flow's stream.
    public var isFinal: Bool { status?.isTerminal ?? false }
}

/// Why the engine refused a request.
public enum FlowEngineError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownFlow(String)
    case invalidArguments(String, FlowArgumentError)
    /// A client request id that is empty, too long or holds control characters.
    case invalidClientRequestId(String)
    /// The client request id names an earlier flow that is not this request (another flow or
    /// other arguments): that flow is left alone and nothing is started.
    case clientRequestIdReused(String, FlowID)
    case draining
    case notFound(FlowID)
    case notHospitalised(FlowID, FlowStatus)
    case finished(FlowID, FlowStatus)
    /// The engine is stopping (node shutdown) and starts no new flows.
    case stopping
    /// The engine only admits starts for other processes to run (`Configuration.runsFlows`).
    case runsNoFlows
    /// A kill of a flow that has asked the notary (`FlowEngine.kill`).
    case notarising(FlowID)

    public var description: String {
        switch self {
        case .unknownFlow(let name): "no flow named `\(name.prefix(200))` is registered on this node"
        case .invalidArguments(let name, let why): "flow \(name) refuses its arguments: \(why)"
        case .invalidClientRequestId(let why): "the client request id \(why)"
        case .clientRequestIdReused(let key, let id):
            "client request id `\(key)` already names flow \(id), started with another flow or other arguments; use a new id for a new request"
        case .draining: "the node is draining for an upgrade and starts no new flows"
        case .notFound(let id): "no flow has id \(id.rawValue.prefix(100))"
        case .notHospitalised(let id, let status): "flow \(id) is \(status.rawValue), not hospitalised"
        case .finished(let id, let status): "flow \(id) has already ended (\(status.rawValue))"
        case .stopping: "the node is shutting down and starts no new flows"
        case .runsNoFlows: "this process runs no flows (it does not have the flow role, ha.roles): it queues starts for the processes that do"
        case .notarising(let id):
            "flow \(id) has asked the notary to notarise its transaction (or agreed to one its counterparty notarises), which may be committed: killing it would free inputs the ledger may have spent; it is not killed: it ends once the notary answers (resume it if it is parked)"
        }
    }
}
