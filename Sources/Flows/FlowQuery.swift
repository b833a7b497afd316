import HawserCore

/// Which flows `FlowStore.list` returns: those matching every filter given, in start order,
/// after the flow `after` (the last one of the previous page), at most `limit`.
public struct FlowQuery: Sendable, Equatable {
    public var status: FlowStatus?
    /// Only flows that have not ended (running or in the hospital), in one query: a flow that
    /// moves between the two meanwhile is seen once.
    public var unfinished = false
    /// The flow's registered name, e.g. `IssueTokens`.
    public var flowName: String?
    public var clientRequestId: String?
    /// Started at or after this instant.
    public var since: Instant?
    /// Started before this instant.
    public var until: Instant?
    public var after: FlowID?
    public var limit: Int

    public init(status: FlowStatus? = nil, flowName: String? = nil, clientRequestId: String? = nil, since: Instant? = nil,
                until: Instant? = nil, after: FlowID? = nil, limit: Int = 100) {
        self.status = status
        self.flowName = flowName
        self.clientRequestId = clientRequestId
        self.since = since
        self.until = until
        self.after = after
        self.limit = limit
    }
}
