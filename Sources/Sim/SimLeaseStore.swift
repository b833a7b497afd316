import Coordination

/// A lease database in memory: the lease row and the candidate rows of one election, changed
/// only by the real `LeaseRules`, one transaction at a time, at the true moment a request
/// reaches it (its clock is true time). It records which candidate each epoch was granted to,
/// and reports an epoch that goes back or is granted twice.
struct SimLeaseStore {
    /// What a candidate asks of the store (the `ElectionCore` actions that touch it).
    enum Call: CustomStringConvertible {
        case round(RoundRequest, instance: String)
        case release(Epoch, handOverTo: String?)
        case clearTarget
        case requestSwitchover(String)

        var description: String {
            switch self {
            case .round(let request, _):
                "round(healthy: \(request.healthy), mayAcquire: \(request.mayAcquire), aside: \(request.standingAside), seen: \(request.highestSeen))"
            case .release(let epoch, let target): "release(\(epoch), to: \(target ?? "-"))"
            case .clearTarget: "clearTarget"
            case .requestSwitchover(let id): "requestSwitchover(\(id))"
            }
        }
    }

    enum Answer: CustomStringConvertible {
        case view(ElectionView)
        case done
        case refused(String)

        var description: String {
            switch self {
            case .view(let view): "view(holder: \(view.holder ?? "-"), epoch: \(view.epoch), target: \(view.target ?? "-"), preferred: \(view.preferred ?? "-"), duplicate: \(view.duplicate))"
            case .done: "done"
            case .refused(let problem): "refused(\(problem))"
            }
        }
    }

    let configuration: LeaseConfiguration
    private(set) var lease = LeaseRow(holder: nil, epoch: .zero, expiresMs: 0)
    private var rows: [CandidateRow] = []
    /// Who each epoch went to.
    private(set) var grants: [Epoch: String] = [:]
    /// Set when the store broke one of its own invariants.
    private(set) var broken: String?

    init(configuration: LeaseConfiguration) { self.configuration = configuration }

    /// One transaction by `id`, at true time `nowNs`.
    mutating func apply(_ call: Call, from id: String, nowNs: Int64) -> Answer {
        let state = LeaseState(nowMs: nowNs / 1_000_000, lease: lease, candidates: rows)
        switch call {
        case .round(let request, let instance):
            let outcome = LeaseRules.round(state, candidate: Candidate(id: id), instance: instance, request: request,
                                           configuration: configuration)
            if let row = outcome.candidate { upsert(row) }
            if let row = outcome.lease { write(row) }
            return .view(outcome.view)
        case .release(let epoch, let target):
            if let row = LeaseRules.release(state, holder: id, epoch: epoch, handOverTo: target) { write(row) }
            return .done
        case .clearTarget:
            if let row = LeaseRules.clearTarget(state, holder: id) { write(row) }
            return .done
        case .requestSwitchover(let target):
            return setTarget(target, nowNs: nowNs)
        }
    }

    /// An operator's `switchover` (through the store, not through a candidate).
    mutating func setTarget(_ target: String, nowNs: Int64) -> Answer {
        let state = LeaseState(nowMs: nowNs / 1_000_000, lease: lease, candidates: rows)
        do {
            if let row = try LeaseRules.setTarget(state, target, configuration: configuration) { write(row) }
            return .done
        } catch {
            return .refused("\(error)")
        }
    }

    /// An operator's `prefer`.
    mutating func setPreferred(_ id: String?, nowNs: Int64) -> Answer {
        let state = LeaseState(nowMs: nowNs / 1_000_000, lease: lease, candidates: rows)
        do {
            write(try LeaseRules.setPreferred(state, id, configuration: configuration))
            return .done
        } catch {
            return .refused("\(error)")
        }
    }

    private mutating func upsert(_ row: CandidateRow) {
        rows.removeAll { $0.candidate.id == row.candidate.id }
        rows.append(row)
    }

    private mutating func write(_ row: LeaseRow) {
        if row.epoch != lease.epoch {
            if row.epoch < lease.epoch { broken = broken ?? "the store's epoch went back from \(lease.epoch) to \(row.epoch)" }
            if let holder = row.holder {
                if let earlier = grants[row.epoch] { broken = broken ?? "epoch \(row.epoch) granted twice: to \(earlier) and to \(holder)" }
                grants[row.epoch] = holder
            }
        }
        lease = row
    }
}
