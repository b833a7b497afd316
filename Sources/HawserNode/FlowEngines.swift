import Flows
import Synchronization

/// Which flow engine serves a request. A single, hot-cold or hot-warm node has one engine, that of
/// `node`. A hot-hot node has one per partition it owns (`partitions`, each switched by its own
/// `ShardService`): a start goes to an engine of this process, in turn, and makes its flow's id
/// fall in that engine's partition; a request about one flow goes to the engine of the flow's
/// partition, or gets the standby answer naming that partition's owner. `node` is then active
/// while any partition serves, so the standby gate, readiness and metrics read one state.
final class FlowEngines: Sendable {
    let node: ServingState<FlowEngine>
    /// Hot-hot: each partition's serving state, in partition order; empty otherwise.
    let partitions: [ServingState<FlowEngine>]
    let map: FlowPartitions?
    private let draining = Mutex(false)
    private let turn = Atomic<UInt>(0)
    private let startQueue = Mutex<StartQueue?>(nil)

    /// One engine, switched by `node`.
    init(node: ServingState<FlowEngine>) {
        self.node = node
        partitions = []
        map = nil
    }

    /// A hot-hot node's partitions, all standby at first. `serving` hears each partition that
    /// starts (true: its engine has resumed its flows) or stops serving here.
    init(partitions map: FlowPartitions, serving: @escaping @Sendable (_ partition: Int, _ serving: Bool) -> Void = { _, _ in }) {
        let summary = Summary(count: map.count, report: serving)
        let states = (0..<map.count).map { k in ServingState<FlowEngine>(.standby(active: nil)) { summary.refresh(changed: k) } }
        summary.partitions.withLock { $0 = states }
        self.node = summary.node
        self.partitions = states
        self.map = map
    }

    /// Keeps a hot-hot node's state: active while any partition serves (with the first one's
    /// engine), taking over while any takes over, and otherwise a standby naming the first owner
    /// it knows of. One refresh at a time, so that the last one reads every partition's last state.
    private final class Summary: Sendable {
        let node = ServingState<FlowEngine>(.standby(active: nil))
        let partitions = Mutex<[ServingState<FlowEngine>]>([])
        private let report: @Sendable (Int, Bool) -> Void
        private let serving: Mutex<[Bool]>

        init(count: Int, report: @escaping @Sendable (Int, Bool) -> Void) {
            self.report = report
            serving = Mutex(Array(repeating: false, count: count))
        }

        func refresh(changed k: Int) {
            partitions.withLock { partitions in
                let states = partitions.map(\.current)
                let active = if case .active = states[k] { true } else { false }
                let changed = serving.withLock { flags in
                    defer { flags[k] = active }
                    return flags[k] != active
                }
                if changed { report(k, active) }
                node.setHealthProblem(partitions.lazy.compactMap(\.healthProblem).first)
                if let engine = states.lazy.compactMap({ if case .active(let engine) = $0 { engine } else { nil } }).first {
                    node.set(.active(engine))
                } else if let reason = states.lazy.compactMap({ if case .takingOver(let reason) = $0 { reason } else { nil } }).first {
                    node.set(.takingOver(reason))
                } else {
                    node.set(.standby(active: states.lazy.compactMap { if case .standby(let active) = $0 { active } else { nil } }.first))
                }
            }
        }
    }

    /// An RPC worker's (hot-hot, without the flow role): its starts are queued for the processes
    /// serving partitions (`StartQueue`). The node serves from then on, with the queue's engine,
    /// which reads the database and runs no flow.
    func queue(_ queue: StartQueue) {
        startQueue.withLock { $0 = queue }
        if isDraining { queue.engine.setDraining(true) }
        node.set(.active(queue.engine))
    }

    /// The queue an RPC worker's starts go to; nil in a process that runs flows.
    var queue: StartQueue? { startQueue.withLock { $0 } }

    /// Where a peer's message starts its responder: the queue in a worker without the flow role,
    /// else the engine of a partition this process serves, in turn (nil: none serves now).
    var responderStarter: (any ResponderStarter)? { queue ?? (try? forStart()) }

    /// The engine a start goes to: in a hot-hot node, that of the next partition this process
    /// serves (a start that waits and names an existing flow waits on that flow's: `NodeAPI`).
    func forStart() throws(NodeAPIError) -> FlowEngine {
        guard !partitions.isEmpty else { return try node.engine() }
        let serving = active
        guard !serving.isEmpty else { return try node.engine() }  // the standby answer
        return serving[Int(turn.add(1, ordering: .relaxed).oldValue % UInt(serving.count))]
    }

    /// The engine that runs flow `id`, or the standby answer naming its partition's owner.
    func engine(for id: FlowID) throws(NodeAPIError) -> FlowEngine {
        guard let map else { return try node.engine() }
        let partition = map.partition(of: id)
        let state = partitions[partition]
        if case .active(let engine) = state.current { return engine }
        guard node.isActive else { return try node.engine() }  // a standby altogether: the usual answer
        let owner = if case .standby(let active) = state.current { active } else { String?.none }
        throw NodeAPIError.partitionElsewhere(id, partition, owner: owner)
    }

    /// Any engine serving now, for what any can answer (reads of the shared database).
    func any() throws(NodeAPIError) -> FlowEngine { try node.engine() }

    /// The engines serving now.
    var active: [FlowEngine] {
        (partitions.isEmpty ? [node] : partitions).compactMap { if case .active(let engine) = $0.current { engine } else { nil } }
    }

    /// Draining for upgrades, on every engine serving now and every one that starts later.
    var isDraining: Bool { draining.withLock { $0 } }
    func setDraining(_ on: Bool) {
        draining.withLock { $0 = on }
        for engine in active { engine.setDraining(on) }
        queue?.engine.setDraining(on)
    }

    /// The process is shutting down: every wait for a flow ends (`FlowEngine.endWaits`).
    func endWaits() {
        for engine in active { engine.endWaits() }
        queue?.engine.endWaits()
    }

    /// Flows running in this process now.
    var runningCount: Int { active.reduce(0) { $0 + $1.runningCount } }
}
