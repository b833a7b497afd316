import Prometheus
import Synchronization

/// `hawser_outbox_messages{recipient=...}`: the messages each recipient's outbox holds, as the
/// last scrape that read the database found them. A recipient whose backlog drained reads 0
/// rather than vanishing: a registered gauge keeps its last value, and an alert on a backlog
/// must see it end.
final class OutboxBacklogGauges: Sendable {
    private let recipients = Mutex<Set<String>>([])

    func show(_ backlog: [String: Int], in registry: PrometheusCollectorRegistry) {
        let shown = recipients.withLock { seen in
            seen.formUnion(backlog.keys)
            return seen
        }
        let descriptor = MetricNameDescriptor(metricName: "hawser_outbox_messages", unitName: "",
                                              helpText: "Session messages in the node's outbox, by recipient party: sent, not yet acknowledged by the recipient's node.")
        for recipient in shown {
            registry.makeGauge(descriptor: descriptor, labels: [("recipient", recipient)]).set(to: Double(backlog[recipient] ?? 0))
        }
    }
}
