import Coordination
import Flows
import Synchronization

/// The node's work in a hot-warm term (`ShardService`): a flow engine on the fenced node
/// database, which resumes every unfinished flow from the shared journal. Draining carries over
/// from one term's engine to the next.
final class FlowShardWork: ShardWork {
    /// The node database's flow store, fenced by the shard's fence.
    private let store: any FlowStore
    private let makeEngine: @Sendable (any FlowStore) -> FlowEngine
    private let draining = Mutex(false)

    init(store: any FlowStore, makeEngine: @escaping @Sendable (any FlowStore) -> FlowEngine) {
        self.store = store
        self.makeEngine = makeEngine
    }

    func claim() async throws { _ = try await store.commit([]) }

    func makeTerm(failed: @escaping @Sendable (String) -> Void) -> FlowEngine {
        let engine = makeEngine(FencedFlowStore(base: store) { failed($0.description) })
        if draining.withLock({ $0 }) { engine.setDraining(true) }
        return engine
    }

    func start(_ engine: FlowEngine) async throws { try await engine.resumeUnfinished() }

    func stop(_ engine: FlowEngine) async {
        draining.withLock { $0 = engine.isDraining }
        await engine.stop()
    }
}
