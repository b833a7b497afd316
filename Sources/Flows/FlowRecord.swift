import HawserCore

/// Where a flow is in its life.
public enum FlowStatus: String, Sendable, Codable, CaseIterable {
    case running
    case completed
    /// The flow threw a `FlowFailure`; it will not run again.
    case failed
    /// In the flow hospital: waiting to be retried (`retryAt` set) or parked for an operator.
    case hospitalised
    case killed

    public var isTerminal: Bool { self == .completed || self == .failed || self == .killed }
}

/// A flow as the store keeps it.
public struct FlowRecord: Sendable, Equatable {
    public var id: FlowID
    /// The caller's idempotency key: starting again with the same key returns this flow.
    public var clientRequestId: String?
    public var flowName: String
    /// The flow value, JSON.
    public var arguments: [UInt8]
    public var status: FlowStatus
    /// The output (JSON) of a completed flow.
    public var result: [UInt8]?
    /// Why the flow failed, was hospitalised or was killed.
    public var error: String?
    /// How many times the hospital has retried the flow.
    public var attempts: Int
    /// When a hospitalised flow will be retried; nil while it is parked for an operator.
    public var retryAt: Instant?
    public var createdAt: Instant
    public var updatedAt: Instant

    public init(id: FlowID, clientRequestId: String?, flowName: String, arguments: [UInt8], status: FlowStatus = .running,
                result: [UInt8]? = nil, error: String? = nil, attempts: Int = 0, retryAt: Instant? = nil,
                createdAt: Instant, updatedAt: Instant) {
        self.id = id
        self.clientRequestId = clientRequestId
        self.flowName = flowName
        self.arguments = arguments
        self.status = status
        self.result = result
        self.error = error
        self.attempts = attempts
        self.retryAt = retryAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// True for a flow that the engine should run after a restart.
    public var isResumable: Bool { status == .running || (status == .hospitalised && retryAt != nil) }
}

/// The fields of a flow that change as it runs.
public struct FlowState: Sendable, Equatable {
    public var status: FlowStatus
    public var result: [UInt8]?
    public var error: String?
    public var attempts: Int
    public var retryAt: Instant?
    public var updatedAt: Instant

    public init(status: FlowStatus, result: [UInt8]? = nil, error: String? = nil, attempts: Int, retryAt: Instant? = nil,
                updatedAt: Instant) {
        self.status = status
        self.result = result
        self.error = error
        self.attempts = attempts
        self.retryAt = retryAt
        self.updatedAt = updatedAt
    }
}
