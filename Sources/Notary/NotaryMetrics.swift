import CoreMetrics
import HawserCore
import Uniqueness

/// The notary's metrics, made from an explicit factory so that a node serves its own registry.
public struct NotaryMetrics: Sendable {
    let committed: Counter
    let conflicts: Counter
    let timeWindowInvalid: Counter
    let entriesApplied: Counter
    let appliedPosition: Gauge
    let confirmedPosition: Gauge
    /// 1 once this replica found the log broken or was outvoted (it stopped signing).
    let logDiverged: Gauge
    /// Reports on the replicas' subject that did not authenticate under this replica's key.
    let unauthenticReports: Counter
    let batchRequests: Recorder
    let rejected: @Sendable (ErrorCodeLabel) -> Counter
    let latency: Timer

    public typealias ErrorCodeLabel = String

    public init(factory: any MetricsFactory) {
        committed = Counter(label: "hawser_notary_outcomes_total", dimensions: [("outcome", "committed")], factory: factory)
        conflicts = Counter(label: "hawser_notary_outcomes_total", dimensions: [("outcome", "conflict")], factory: factory)
        timeWindowInvalid = Counter(label: "hawser_notary_outcomes_total", dimensions: [("outcome", "time_window_invalid")], factory: factory)
        entriesApplied = Counter(label: "hawser_notary_log_entries_applied_total", factory: factory)
        appliedPosition = Gauge(label: "hawser_notary_applied_position", factory: factory)
        confirmedPosition = Gauge(label: "hawser_notary_confirmed_position", factory: factory)
        logDiverged = Gauge(label: "hawser_notary_log_diverged", factory: factory)
        unauthenticReports = Counter(label: "hawser_notary_unauthentic_reports_total", factory: factory)
        batchRequests = Recorder(label: "hawser_notary_requests_per_apply", factory: factory)
        rejected = { code in Counter(label: "hawser_notary_rejected_total", dimensions: [("code", code)], factory: factory) }
        latency = Timer(label: "hawser_notary_request_duration_seconds", factory: factory)
    }

    func recordApplied(entries: Int, decision: BatchDecision) {
        entriesApplied.increment(by: entries)
        batchRequests.record(decision.outcomes.count)
        for (_, outcome) in decision.newOutcomes {
            switch outcome {
            case .committed: committed.increment()
            case .conflict: conflicts.increment()
            case .timeWindowInvalid: timeWindowInvalid.increment()
            }
        }
    }
}
