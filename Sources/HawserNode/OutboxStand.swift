import Coordination
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// The singleton of a hot-hot node's outbox (002's singleton service, through an election): of
/// the processes with the p2p role, the one that leads `<election>.outbox` delivers the node's
/// outbox and prunes its inbox (`SessionHub`'s `delivers`), so that peers are reached from the
/// processes that face them, never from a flow worker. A process that cannot read the node
/// database stops standing (the election's health check), and one that shuts down withdraws.
/// No fence: a deposed leader delivering a moment longer sends messages twice at worst, and the
/// receiver takes each message once (docs/p2p.md).
final class OutboxStand: Service, Sendable {
    private let stand: ShardStand
    private let leading: Atomic<Bool>
    /// `hawser_outbox_delivering`: 1 while this process delivers the node's outbox.
    private let delivering: Gauge

    init(_ ha: HAConfiguration, sharing shared: ElectionConnections?, baseDirectory: String, registry: PrometheusCollectorRegistry,
         logger: Logger, probe: @escaping @Sendable () async throws -> Void) throws {
        let health = HealthLog(logger: logger)
        stand = try ShardStand(ha, shard: .outbox, sharing: shared, baseDirectory: baseDirectory, logger: logger, probe: probe,
                               report: health.report)
        // After the throwing call: Swift 6.3.1's optimiser crashed (CopyPropagation, "Found
        // outside of lifetime use") on the clean-up of an Atomic initialised before a throw.
        leading = Atomic(false)
        delivering = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "hawser_outbox_delivering", unitName: "",
            helpText: "1 while this process delivers its node's outbox (hot-hot: it leads the election <election>.outbox)."))
        delivering.set(to: 0)
    }

    /// Whether this process delivers the outbox now.
    var leads: Bool { leading.load(ordering: .acquiring) }

    func run() async throws {
        defer { lead(false) }
        do { try await stand() } catch {
            await stand.administration.close()
            throw error
        }
        await stand.administration.close()
    }

    private func stand() async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.stand.election.run() }
                group.addTask {
                    for await status in self.stand.election.statuses() { self.lead(status.role.epoch != nil) }
                }
                defer { group.cancelAll() }
                // The election gave up (a duplicate id): so does the node. Or shut down.
                try await group.next()
            }
        }
    }

    private func lead(_ leads: Bool) {
        guard leading.exchange(leads, ordering: .acquiringAndReleasing) != leads else { return }
        delivering.set(to: leads ? 1 : 0)
        stand.logger.notice(leads ? "delivering the node's outbox" : "no longer delivering the node's outbox")
    }
}

/// Says when the health check's verdict changes, not at every check.
private final class HealthLog: Sendable {
    private let last = Mutex<String?>(nil)
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func report(_ problem: String?) {
        let changed = last.withLock { last in
            defer { last = problem }
            return last != problem
        }
        guard changed else { return }
        if let problem {
            logger.warning("not standing for the outbox: the node database is unhealthy", metadata: ["problem": "\(problem)"])
        } else {
            logger.notice("standing for the outbox again: the node database is healthy")
        }
    }
}
