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
        if timeout <= .zero { out.append("sessions.timeoutMillis must be positive") }
        if backoff.initialDelay <= .zero { out.append("sessions.retryInitialDelayMillis must be positive") }
        if backoff.maxDelay < backoff.initialDelay { out.append("sessions.retryMaxDelayMillis must be at least retryInitialDelayMillis") }
        if pollInterval <= .zero { out.append("sessions.pollIntervalMillis must be positive") }
        if !(1...10_000).contains(batchSize) { out.append("sessions.batchSize must be from 1 to 10000") }
        if inboxPruneInterval < .milliseconds(100) { out.append("sessions.inboxPruneIntervalMillis must be at least 100") }
        return out
    }
}
