import Coordination
import Flows
import Synchronization

/// The flow store of a node that shares its database (hot-warm, hot-cold): every call goes to
/// `base`, and a commit the fencing check refused (`stale_epoch`: a newer owner exists;
/// `not_owner`) is reported to `refused` before the error goes on to the flow, so that the node
/// stops its engine at once instead of letting each flow find out on its own.
struct FencedFlowStore: FlowStore {
    let base: any FlowStore
    let refused: @Sendable (CoordinationError) -> Void

    func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?] {
        do {
            return try await base.commit(writes)
        } catch let error as CoordinationError where error.isFencingRefusal {
            refused(error)
            throw error
        }
    }

    func record(_ id: FlowID) async throws -> FlowRecord? { try await base.record(id) }
    func record(clientRequestId: String) async throws -> FlowRecord? { try await base.record(clientRequestId: clientRequestId) }
    func journal(of id: FlowID) async throws -> [JournalEntry] { try await base.journal(of: id) }
    func list(_ query: FlowQuery) async throws -> [FlowRecord] { try await base.list(query) }
    func resumable() async throws -> [FlowRecord] { try await base.resumable() }
    func replayMarkers() async throws -> Set<FlowID> { try await base.replayMarkers() }
}

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

    func start(_ engine: FlowEngine) async throws { try await engine.resumeUnfinished(createdBefore: nil) }

    func stop(_ engine: FlowEngine) async {
        draining.withLock { $0 = engine.isDraining }
        await engine.stop()
    }
}
