import Coordination
import Flows

/// The node's work in a hot-warm term, or a hot-hot partition's (`ShardService`): a flow engine on
/// the fenced node database, which resumes every unfinished flow of the shard (all of them, or
/// the partition's, `owns`) from the shared journal. A term's engine drains if the node does.
final class FlowShardWork: ShardWork {
    /// The node database's flow store, fenced by the shard's fence.
    private let store: any FlowStore
    private let owns: @Sendable (FlowID) -> Bool
    private let makeEngine: @Sendable (any FlowStore) -> FlowEngine
    private let draining: @Sendable () -> Bool
    private let claiming: @Sendable () async throws -> Void

    /// `claim`: the claim of the shard's fence (`NodeFlowStore.claim`).
    init(store: any FlowStore, owns: @escaping @Sendable (FlowID) -> Bool = { _ in true }, claim: @escaping @Sendable () async throws -> Void,
         draining: @escaping @Sendable () -> Bool, makeEngine: @escaping @Sendable (any FlowStore) -> FlowEngine) {
        self.store = store
        self.owns = owns
        self.claiming = claim
        self.makeEngine = makeEngine
        self.draining = draining
    }

    func claim() async throws { try await claiming() }

    func makeTerm(failed: @escaping @Sendable (String) -> Void) -> FlowEngine {
        let engine = makeEngine(FencedFlowStore(base: store, owns: owns) { failed($0.description) })
        if draining() { engine.setDraining(true) }
        return engine
    }

    func start(_ engine: FlowEngine) async throws { try await engine.resumeUnfinished() }

    func stop(_ engine: FlowEngine) async { await engine.stop() }
}
