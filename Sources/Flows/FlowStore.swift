/// One write to the flow store. Writes from many flows are committed together (group commit).
public enum FlowWrite: Sendable {
    /// Creates the flow unless one with the same client request id exists.
    case start(FlowRecord)
    /// Appends one journal entry and applies its local effects.
    case journal(FlowID, JournalEntry, [LocalEffect])
    /// Changes the flow's status and applies local effects (e.g. releasing its soft locks).
    case state(FlowID, FlowState, [LocalEffect])
    /// Drops the journal of a flow that has ended, all but its progress steps (which observers
    /// are shown): a replay never needs it again, and the outcome is in the flow's record.
    case compact(FlowID)
    /// Sets (true) or clears the flow's replay marker (see `StartupReplay`).
    case replayMarker(FlowID, Bool)
    /// Records that the flow's transaction may be committed from now on (it is about to ask the
    /// notary, or to give a counterparty its agreement to one: `FlowContext.transactionMayCommit`),
    /// so it is not killed (a kill releases its inputs) until it ends. The flow's compaction,
    /// when it has ended, removes the record.
    case notaryAsked(FlowID)
}

extension FlowWrite {
    /// The flow the write is about.
    public var flowID: FlowID {
        switch self {
        case .start(let record): record.id
        case .journal(let id, _, _), .state(let id, _, _), .compact(let id), .replayMarker(let id, _), .notaryAsked(let id): id
        }
    }
}

/// The checkpoint store: flows, their journals and the local effects committed with them.
public protocol FlowStore: Sendable {
    /// Commits every write in one transaction, durably, in order. Returns, for each `.start`, the
    /// stored record (the existing one when the client request id was already used), nil for others.
    /// A start refused because its client request id was used is not written, and neither are
    /// the later writes of its flow in the same call.
    /// A journal entry whose sequence already exists is refused and nothing is committed; a
    /// transaction refused for what its writes hold throws `FlowWriteRefused`.
    /// Called only from the group committer's own thread, which an implementation may block,
    /// unless it `batchesCommits`.
    func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?]
    /// Whether `commit` batches concurrent callers into shared transactions itself, on a thread
    /// of its own (a hot-hot partition's store, `PartitionFlowStore`): the engine's group
    /// committer then hands it each flow's writes as they come. No default: a store that wraps
    /// another says what the wrapped one says (a default once hid the shared commit's).
    var batchesCommits: Bool { get }

    func record(_ id: FlowID) async throws -> FlowRecord?
    func record(clientRequestId: String) async throws -> FlowRecord?
    /// The flow's journal in sequence order.
    func journal(of id: FlowID) async throws -> [JournalEntry]
    /// The flows `query` selects, in creation order.
    func list(_ query: FlowQuery) async throws -> [FlowRecord]
    /// Every flow the engine must run again after a restart.
    func resumable() async throws -> [FlowRecord]
    /// The flows whose replay marker is set.
    func replayMarkers() async throws -> Set<FlowID>
    /// Whether the flow has asked the notary (`notaryAsked`) and not been compacted since.
    func hasAskedNotary(_ id: FlowID) async throws -> Bool
    /// The engine's last write, once every flow it ran has stopped (none took the process down):
    /// clears the replay markers of `ids`, those it set and no write of the flow has cleared
    /// since. Unfenced, so that a process whose term ended (it released its fence first) makes
    /// it also once a newer owner has claimed: a marker is a hint about poison, not ledger
    /// state, and the newer owner waits for it (`FlowEngine.Configuration.markerGrace`) rather
    /// than park a healthy flow. A newer owner sets no marker on a flow it found marked before it
    /// has looked again, so this clears none of its markers. Called only from the group
    /// committer's own thread.
    func clearReplayMarkers(_ ids: [FlowID]) async throws
}

/// The flow store a node runs on (SQLite or PostgreSQL): the port, and what the node's API,
/// metrics and tools read besides.
public protocol NodeFlowStore: FlowStore {
    /// How many flows have each status.
    func counts() async throws -> [FlowStatus: Int]
    /// Commits as `commit` does, proving every one of `fences` inside the transaction instead of
    /// the store's own fence (a hot-hot process commits the writes of the partitions it owns
    /// together, each fenced by its partition's epoch). A fence whose epoch the database holds
    /// higher refuses the whole transaction (`CoordinationError.staleEpoch` naming it); a higher
    /// one is recorded, as a new owner's first write does.
    func commit(_ writes: [FlowWrite], proving fences: [CommitFence]) async throws -> [FlowRecord?]
    /// A new owner's claim of the store's fence at the epoch it holds, in a transaction of its
    /// own: refused (`CoordinationError.staleEpoch`) unless that epoch is higher than the one
    /// recorded, so that two processes never both begin a term on one epoch. (Nothing to do for
    /// an unfenced store.)
    func claim() async throws
    /// Whether the store's fence still owns it: throws `CoordinationError.staleEpoch` once the
    /// database records a higher epoch (a newer owner claimed). A read: a hot-cold process that
    /// writes nothing learns of its successor by it (`HotColdFence`). Nothing for an unfenced store.
    func checkClaim() async throws
    /// A setting of the node as the database records it (`node_settings`: a hot-hot node's
    /// `partitions` and `election`), after recording `value` if none was and `value` is given.
    /// Unfenced.
    func setting(_ name: String, proposing value: String?) async throws -> String?
    /// Records `value` for the setting, whatever was recorded (`hawser node repartition`, while no
    /// process of the node runs; `hawser admin config set`), or with nil deletes it. Unfenced.
    func setSetting(_ name: String, to value: String?) async throws
    /// The settings whose names begin with `prefix`, read as any read of a running process is
    /// (`setting(_:proposing:)` opens a connection of its own, for a process whose pool does not
    /// run yet).
    func settings(prefix: String) async throws -> [String: String]

    /// Starts for the engines of other processes to run (a hot-hot node's RPC and P2P workers,
    /// docs/node.md "Roles"), in one transaction: each flow created as a `.start` write creates
    /// it, with a row in the start queue of its `partition` (the flow's). Returns each start's
    /// stored record, in order: the flow its client request id already named (in the database, or
    /// earlier in `starts`), and no queue row, if it was used. Unfenced: only the partition's
    /// owner runs the flow, under its fence.
    func enqueue(_ starts: [QueuedStart]) async throws -> [FlowRecord]
    /// The queued starts of `partitions`, oldest first, at most `limit`: their flows as they stand.
    func queued(in partitions: [Int], limit: Int) async throws -> [FlowRecord]
    /// Those of `ids` still queued, oldest first: their flows as they stand (one read).
    func queued(_ ids: [FlowID]) async throws -> [FlowRecord]
    /// Removes queued starts the engines of the partitions they are in have taken, in one
    /// transaction proving each of `fences` (those partitions', as `commit(_:proving:)` does): a
    /// deposed owner's removal is refused whole (`CoordinationError.staleEpoch`), and the new
    /// owner finds them. (Once removed, a flow that still runs is resumed by whoever owns its
    /// partition next, as every unfinished flow is.)
    func dequeue(_ ids: [FlowID], proving fences: [CommitFence]) async throws
}

/// A fence a commit proves (`NodeFlowStore.commit(_:proving:)`): a resource of the fencing table
/// and the epoch the writer holds it under.
public struct CommitFence: Sendable, Hashable {
    public var resource: String
    public var epoch: UInt64
    public init(resource: String, epoch: UInt64) {
        self.resource = resource
        self.epoch = epoch
    }
}

/// The store rolled a commit back for what one of its writes holds (a constraint: a journal
/// entry whose sequence exists, a start whose flow id exists), not because it cannot commit:
/// the same writes are refused again, while others may commit. The group committer then commits
/// the other flows' writes without them (`GroupCommitter`).
public struct FlowWriteRefused: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A start queued for the engine of the partition it is in (`NodeFlowStore.enqueue`).
public struct QueuedStart: Sendable {
    public var record: FlowRecord
    public var partition: Int

    public init(_ record: FlowRecord, partition: Int) {
        self.record = record
        self.partition = partition
    }
}
