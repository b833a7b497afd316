import Coordination
import HawserCore
import Logging
import ServiceLifecycle

/// A notary's parts wired together: front, appender, replica, quorum and (in a cluster) the
/// replicas' gossip. Every notary is built here (the standalone notary, the node's embedded
/// one, the benchmarks and the tests), so the wiring exists once.
public struct NotaryAssembly: Sendable {
    public let notary: Notary
    public let replica: Replica
    public let appender: LogAppender
    public let quorum: Quorum
    public let gossip: ReplicaGossip?

    /// The services to run, in start order: the service group stops them in reverse, so the
    /// appender stops taking requests before the replica, and the gossip goes last.
    public var services: [any Service] { (gossip.map { [$0] } ?? []) + [replica, appender] }

    /// `link` and `membership`: how this replica reaches the others of its cluster and who they
    /// are (`.alone` and nil for a notary on its own). `shareThread`: the appender and replica
    /// run on one thread (a notary that serves one node's flows in small batches; under heavy load
    /// two threads work in parallel). `liveness`: how long a silent peer still counts as up
    /// (`Confirmations.liveness`).
    public init(name: String, signer: SigningKey, authorisedParties: [Party]?, limits: NotaryLimits,
                log: any ReplicatedLog, store: any NotaryStore, link: (any ReplicaLink)? = nil,
                membership: ReplicaMembership = .alone, appendTimeout: Duration = .seconds(10),
                metrics: NotaryMetrics, logger: Logger, clock: @escaping @Sendable () -> Instant = Instant.now,
                shareThread: Bool = false, liveness: Duration = .milliseconds(1_500)) {
        let codec = ReplicaCodec(notaryKey: signer)
        let waiters = AnswerWaiters()
        let gate = AnswerGate(signer: signer, waiters: waiters)
        let quorum = Quorum(membership: membership, gate: gate, metrics: metrics, liveness: liveness)
        let thread = shareThread ? DedicatedThread(name: "hawser-notary", users: 2) : nil
        replica = Replica(log: log, store: store, codec: codec, gate: gate, quorum: quorum,
                          maxEntriesPerApply: limits.maxEntriesPerApply, metrics: metrics, logger: logger, thread: thread)
        appender = LogAppender(log: log, link: link, codec: codec, quorum: quorum, maxRequestsPerEntry: limits.maxRequestsPerLogEntry,
                               appendTimeout: appendTimeout, clock: clock, thread: thread)
        notary = Notary(name: name, signer: signer, authorisedParties: authorisedParties, limits: limits, log: log, appender: appender,
                        waiters: waiters, store: store, quorum: quorum, metrics: metrics)
        let appender = self.appender
        gossip = link.map { ReplicaGossip(link: $0, codec: codec, quorum: quorum, appender: appender, logger: logger) }
        self.quorum = quorum
    }
}
