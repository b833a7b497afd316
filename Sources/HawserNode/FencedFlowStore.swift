import Coordination
import Flows

/// The flow store of a node that shares its database (hot-warm, hot-cold): every call goes to
/// `base`, and a commit the fencing check refused (`stale_epoch`: a newer owner exists;
/// `not_owner`) is reported to `refused` before the error goes on to the flow, so that the node
/// stops its engine at once instead of letting each flow find out on its own.
///
/// The engine of a hot-hot partition sees only its partition's unfinished flows and replay
/// markers (`owns`), and may write only about its partition's flows: every other flow belongs to
/// another partition's owner.
struct FencedFlowStore: FlowStore {
    let base: any FlowStore
    var owns: @Sendable (FlowID) -> Bool = { _ in true }
    let refused: @Sendable (CoordinationError) -> Void

    func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?] {
        // The partition's fence proves ownership of its flows only: a write about another
        // partition's flow is refused here, as a stale owner's would be by the database.
        if let stranger = writes.lazy.map(\.flowID).first(where: { !owns($0) }) {
            let error = CoordinationError.notOwner(resource: "the partition of flow \(stranger)")
            refused(error)
            throw error
        }
        do {
            return try await base.commit(writes)
        } catch let error as CoordinationError where error.isFencingRefusal {
            refused(error)
            throw error
        }
    }

    var batchesCommits: Bool { base.batchesCommits }
    func record(_ id: FlowID) async throws -> FlowRecord? { try await base.record(id) }
    func record(clientRequestId: String) async throws -> FlowRecord? { try await base.record(clientRequestId: clientRequestId) }
    func journal(of id: FlowID) async throws -> [JournalEntry] { try await base.journal(of: id) }
    func list(_ query: FlowQuery) async throws -> [FlowRecord] { try await base.list(query) }
    func resumable() async throws -> [FlowRecord] { try await base.resumable().filter { owns($0.id) } }
    func replayMarkers() async throws -> Set<FlowID> { try await base.replayMarkers().filter(owns) }
    func hasAskedNotary(_ id: FlowID) async throws -> Bool { try await base.hasAskedNotary(id) }
    /// Not reported when refused: the term is over by then.
    func clearReplayMarkers(_ ids: [FlowID]) async throws { try await base.clearReplayMarkers(ids.filter(owns)) }
}
