import Sessions

/// A node's session settings (`docs/sessions.md`; the node's future `sessions` options).
public struct SessionConfiguration: Sendable, Equatable {
    /// How long a flow waits in `receive` for the counterparty's next message.
    public var timeout: Duration
    /// The link manager's retries of a peer that could not be reached.
    public var backoff: LinkBackoff.Policy
    /// How often the link manager looks at the outbox when nothing told it to.
    public var pollInterval: Duration
    /// Most outbox messages the link manager reads at once (a backlog drains in such batches).
    public var batchSize: Int
    /// How often the inbox messages of sessions whose flow has ended are deleted.
    public var inboxPruneInterval: Duration

    public init(timeout: Duration = .seconds(300), backoff: LinkBackoff.Policy = LinkBackoff.Policy(),
                pollInterval: Duration = .milliseconds(500), batchSize: Int = 256, inboxPruneInterval: Duration = .seconds(10)) {
        self.timeout = timeout
        self.backoff = backoff
        self.pollInterval = pollInterval
        self.batchSize = batchSize
        self.inboxPruneInterval = inboxPruneInterval
    }

    /// One sentence per invalid value; empty when all are valid.
    public var problems: [String] {
        var out = [String]()
        let day = Duration.seconds(86_400)  // longer is a typing mistake, and would overflow a clock reading
        if timeout <= .zero || timeout > day { out.append("sessions.timeoutMillis must be 1...86400000 (a day)") }
        if backoff.initialDelay <= .zero || backoff.initialDelay > day { out.append("sessions.retryInitialDelayMillis must be 1...86400000 (a day)") }
        if backoff.maxDelay < backoff.initialDelay || backoff.maxDelay > day {
            out.append("sessions.retryMaxDelayMillis must be sessions.retryInitialDelayMillis...86400000 (a day)")
        }
        if pollInterval <= .zero || pollInterval > day { out.append("sessions.pollIntervalMillis must be 1...86400000 (a day)") }
        if !(1...10_000).contains(batchSize) { out.append("sessions.batchSize must be from 1 to 10000") }
        if inboxPruneInterval < .milliseconds(100) || inboxPruneInterval > day {
            out.append("sessions.inboxPruneIntervalMillis must be 100...86400000 (a day)")
        }
        return out
    }
}
