import Coordination
import Flows
import Sessions

/// The `sessions` section of the node's configuration (docs/sessions.md, "Settings"): how long a
/// flow waits for a peer's message, and how the link manager delivers the outbox.
public struct NodeSessionsConfiguration: Codable, Sendable, Equatable {
    public var timeoutMillis: Int
    public var retryInitialDelayMillis: Int
    public var retryMaxDelayMillis: Int
    public var pollIntervalMillis: Int
    public var batchSize: Int
    public var inboxPruneIntervalMillis: Int

    enum CodingKeys: String, CodingKey, CaseIterable {
        case timeoutMillis, retryInitialDelayMillis, retryMaxDelayMillis, pollIntervalMillis, batchSize, inboxPruneIntervalMillis
    }

    /// `SessionConfiguration`'s defaults.
    public init() { self.init(SessionConfiguration()) }

    init(_ settings: SessionConfiguration) {
        timeoutMillis = Int(settings.timeout.millisecondsValue)
        retryInitialDelayMillis = Int(settings.backoff.initialDelay.millisecondsValue)
        retryMaxDelayMillis = Int(settings.backoff.maxDelay.millisecondsValue)
        pollIntervalMillis = Int(settings.pollInterval.millisecondsValue)
        batchSize = settings.batchSize
        inboxPruneIntervalMillis = Int(settings.inboxPruneInterval.millisecondsValue)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NodeSessionsConfiguration()
        timeoutMillis = try c.decodeIfPresent(Int.self, forKey: .timeoutMillis) ?? d.timeoutMillis
        retryInitialDelayMillis = try c.decodeIfPresent(Int.self, forKey: .retryInitialDelayMillis) ?? d.retryInitialDelayMillis
        retryMaxDelayMillis = try c.decodeIfPresent(Int.self, forKey: .retryMaxDelayMillis) ?? d.retryMaxDelayMillis
        pollIntervalMillis = try c.decodeIfPresent(Int.self, forKey: .pollIntervalMillis) ?? d.pollIntervalMillis
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
        inboxPruneIntervalMillis = try c.decodeIfPresent(Int.self, forKey: .inboxPruneIntervalMillis) ?? d.inboxPruneIntervalMillis
    }

    /// The settings the session hub runs with; `problems` names the invalid ones.
    public var settings: SessionConfiguration {
        SessionConfiguration(timeout: .milliseconds(timeoutMillis),
                             backoff: LinkBackoff.Policy(initialDelay: .milliseconds(retryInitialDelayMillis),
                                                         maxDelay: .milliseconds(retryMaxDelayMillis)),
                             pollInterval: .milliseconds(pollIntervalMillis), batchSize: batchSize,
                             inboxPruneInterval: .milliseconds(inboxPruneIntervalMillis))
    }
}
