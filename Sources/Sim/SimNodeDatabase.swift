import Coordination
import Flows
import HawserCore

/// The shared node database of a hot-warm pair, in memory: the fence row of the shard and the
/// flows, each a number of steps long, with their replay markers. Every write is fenced the way
/// `SQLiteFencing.check` and `PostgresFencing` fence it (refused below the highest epoch seen,
/// which a write at a higher one raises); a term's start applies the real `StartupReplay`.
struct SimNodeDatabase {
    /// Who set a flow's replay marker: the process, its incarnation, the term's epoch, and how
    /// many disturbances that process had seen by then (see `ShardLayer`).
    struct Marker: Hashable {
        var process: Int
        var incarnation: Int
        var epoch: Epoch
        var disturbances: Int
    }

    struct Flow {
        var step = 0
        var parked = false
        var marker: Marker?
    }

    enum Call: CustomStringConvertible {
        /// The claim of a term: its epoch recorded, if higher than the one recorded.
        case claim(Epoch)
        /// A term's start: the flows to run again, their markers set (`StartupReplay`).
        case start(Epoch, Marker)
        /// A flow's next durable write, from `from` to `from + 1` (clears its marker).
        case step(Epoch, flow: Int, from: Int)
        /// A stopped term's cleanup: the markers of the flows it ran that have not written since,
        /// unfenced (`FlowStore.clearReplayMarkers`); the epoch is the term's, for the trace.
        case cleanup(Epoch, flows: [Int])

        var description: String {
            switch self {
            case .claim(let epoch): "claim(\(epoch))"
            case .start(let epoch, _): "start(\(epoch))"
            case .step(let epoch, let flow, let from): "step(\(epoch), flow \(flow), from \(from))"
            case .cleanup(let epoch, let flows): "cleanup(\(epoch), \(flows.count) flows)"
            }
        }
    }

    enum Answer: CustomStringConvertible {
        case done
        /// The flows to run, with the step each is at.
        case started([(flow: Int, step: Int)])
        case refused(String)

        var description: String {
            switch self {
            case .done: "done"
            case .started(let flows): "started(\(flows.count) flows)"
            case .refused(let problem): "refused(\(problem))"
            }
        }
    }

    let steps: Int
    let fenced: Bool
    private(set) var fence = Epoch.zero
    private(set) var flows: [Flow]
    /// Flows parked at a start, with the marker that parked them, for the checks.
    private(set) var parkings: [(flow: Int, marker: Marker)] = []
    /// Set when a flow step was written twice: two owners ran one flow at once.
    private(set) var broken: String?

    init(flows: Int, steps: Int, fenced: Bool = true) {
        self.steps = steps
        self.fenced = fenced
        self.flows = Array(repeating: Flow(), count: flows)
    }

    func isDone(_ flow: Int) -> Bool { flows[flow].step >= steps }

    mutating func apply(_ call: Call) -> Answer {
        switch call {
        case .claim(let epoch):
            // A claim records a higher epoch only (`SQLiteFencing.claim`): an equal one was claimed already.
            if fenced, fence >= epoch { return .refused("stale_epoch: claimed \(epoch), current \(fence)") }
            fence = max(fence, epoch)
            return .done
        case .start(let epoch, let marker):
            if let refusal = fenced(epoch) { return refusal }
            return start(marker)
        case .step(let epoch, let flow, let from):
            if let refusal = fenced(epoch) { return refusal }
            guard flows[flow].step == from, !flows[flow].parked else {
                broken = broken ?? "flow \(flow) step \(from) written at epoch \(epoch), but the flow is at step \(flows[flow].step)"
                    + (flows[flow].parked ? " and parked" : "") + ": two owners ran it at once"
                return .refused("broken")
            }
            flows[flow].step += 1
            flows[flow].marker = nil
            return .done
        case .cleanup(_, let cleared):
            for flow in cleared { flows[flow].marker = nil }
            return .done
        }
    }

    /// The fencing check: nil if the write may go on (and the fence is raised to `epoch`).
    private mutating func fenced(_ epoch: Epoch) -> Answer? {
        if fence > epoch, fenced { return .refused("stale_epoch: presented \(epoch), current \(fence)") }
        fence = max(fence, epoch)
        return nil
    }

    private mutating func start(_ marker: Marker) -> Answer {
        let zero = Instant(microsecondsSinceEpoch: 0)
        let resumable = flows.indices.filter { !isDone($0) && !flows[$0].parked }.map { index in
            FlowRecord(id: Self.id(index), clientRequestId: nil, flowName: "Sim", arguments: [], createdAt: zero, updatedAt: zero)
        }
        let marked = Set(flows.indices.filter { flows[$0].marker != nil }.map(Self.id))
        let replay = StartupReplay(resumable: resumable, markers: marked, now: zero)
        for write in replay.writes {
            guard case .replayMarker(let id, let set) = write else {
                guard case .state(let id, _, _) = write, let index = Self.index(id) else { continue }
                if let setter = flows[index].marker { parkings.append((index, setter)) }
                flows[index].parked = true
                continue
            }
            guard let index = Self.index(id) else { continue }
            flows[index].marker = set ? marker : nil
        }
        return .started(replay.replay.compactMap { Self.index($0.id) }.map { ($0, flows[$0].step) })
    }

    static func id(_ index: Int) -> FlowID { FlowID("flow-\(index)") }
    static func index(_ id: FlowID) -> Int? { Int(id.rawValue.dropFirst(5)) }
}
