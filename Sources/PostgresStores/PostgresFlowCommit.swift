import Flows
import HawserCore
import NIOCore
import PostgresNIO
import Vault

/// A group commit on PostgreSQL in one round trip, whatever the number of flows: each kind of
/// write of a batch goes to the server as arrays, and one call of the function
/// `hawser_flow_commit` (`PostgresFlowCommitFunction.swift`) applies them in the order start,
/// journal, notary ask, effects, state, compaction, replay marker. One statement per write made a commit of
/// 64 flows several hundred round trips (364 flows/s); one statement per kind of write still took
/// eight, `BEGIN` and `COMMIT` included, each a wake-up of the server and of this process.
///
/// The order is the batch's own wherever it matters: a batch is cut into segments within which
/// each flow's writes already come in that order (a journal entry after its flow's compaction
/// starts a new segment), and within a kind the writes keep their order. Effects of different
/// flows touch different states, except releases and consumptions, which commute.
enum PostgresFlowCommit {
    /// The place of each kind of write in a segment.
    static func phase(_ write: FlowWrite) -> Int {
        switch write {
        case .start: 0
        case .journal, .notaryAsked: 1
        case .state: 2
        case .compact: 3
        case .replayMarker: 4
        }
    }

    /// Consecutive ranges of `writes` in which no flow has a write of an earlier phase after a
    /// later one; at least one, so that an empty batch still proves the fence.
    static func segments(_ writes: [FlowWrite]) -> [Range<Int>] {
        var out = [Range<Int>]()
        var start = 0
        var reached = [FlowID: Int]()
        for (index, write) in writes.enumerated() {
            let (id, phase) = (write.flowID, phase(write))
            if let last = reached[id], phase < last {
                out.append(start..<index)
                start = index
                reached = [:]
            }
            reached[id] = phase
        }
        if start < writes.count || out.isEmpty { out.append(start..<writes.count) }
        return out
    }

    /// Commits `writes[range]` on `connection` in one call of `hawser_flow_commit` (one round
    /// trip), after proving each of `fences`: fills `out` for its
    /// starts, and `refused` with flows whose start found its client request id taken (in the
    /// database, or earlier in the batch); their later writes are not written.
    static func commit(_ writes: [FlowWrite], _ range: Range<Int>, fences: [CommitFence],
                       into out: inout [FlowRecord?], refused: inout Set<FlowID>,
                       _ connection: PostgresConnection, _ logger: Logger) async throws {
        var segment = Segment()
        var fresh = [(index: Int, record: FlowRecord)](), firstWith = [String: Int](), repeats = [(index: Int, first: Int)]()
        for index in range {
            switch writes[index] {
            case .start(let record):
                if let key = record.clientRequestId {
                    if let first = firstWith[key] {
                        // Refused whatever the first start finds: the flow it gets is never this one.
                        repeats.append((index, first))
                        refused.insert(record.id)
                        continue
                    }
                    firstWith[key] = index
                }
                fresh.append((index, record))
            case .journal(let id, let entry, let local):
                segment.journal.append((id, entry))
                segment.effects.add(local, of: id)
            case .state(let id, let state, let local):
                if segment.states.updateValue(state, forKey: id) == nil { segment.stateOrder.append(id) }
                segment.effects.add(local, of: id)
            case .compact(let id): segment.compacted.append(id.rawValue)
            case .replayMarker(let id, let set): segment.markers[id.rawValue] = set
            case .notaryAsked(let id): segment.asked.append(id.rawValue)
            }
        }
        var taken = [String: FlowRecord]()
        for record in try await PostgresFlowStore.fetch(segment.query(fences: fences, refused: refused, starts: fresh.map(\.record)),
                                                       connection, logger) {
            taken[record.clientRequestId ?? ""] = record
        }
        for (index, record) in fresh {
            guard let key = record.clientRequestId, let stored = taken[key] else {
                out[index] = record
                continue
            }
            out[index] = stored
            if stored.id != record.id { refused.insert(record.id) }
        }
        for (index, first) in repeats { out[index] = out[first] }
    }

    /// A segment's writes other than starts, gathered by kind in the batch's order.
    private struct Segment {
        var journal = [(FlowID, JournalEntry)]()
        var states = [FlowID: FlowState](), stateOrder = [FlowID]()
        var compacted = [String]()
        var markers = [String: Bool]()
        var asked = [String]()
        var effects = Effects()

        /// The call of `hawser_flow_commit`; it returns the flows holding the client request ids
        /// `starts` found taken.
        func query(fences: [CommitFence], refused: Set<FlowID>, starts: [FlowRecord]) -> PostgresQuery {
            let states = stateOrder.map { ($0.rawValue, self.states[$0]!) }
            let (consumed, produced, released, messages) = (effects.consumed, effects.produced, effects.released, effects.messages)
            return """
                SELECT \(unescaped: PostgresFlowStore.columns) FROM hawser_flow_commit(
                    \(fences.map(\.resource))::text[], \(fences.map { Int64($0.epoch) })::bigint[], \(refused.map(\.rawValue)),
                    \(starts.map(\.id.rawValue)), \(starts.map { $0.clientRequestId ?? "" }), \(starts.map { $0.clientRequestId != nil }),
                    \(starts.map(\.flowName)), \(starts.map { ByteBuffer(bytes: $0.arguments) }), \(starts.map(\.status.rawValue)),
                    \(starts.map { Int64($0.attempts) }), \(starts.map(\.createdAt.microsecondsSinceEpoch)),
                    \(starts.map(\.updatedAt.microsecondsSinceEpoch)),
                    \(journal.map(\.0.rawValue)), \(journal.map { Int64($0.1.sequence) }), \(journal.map(\.1.kind)),
                    \(journal.map(\.1.descriptor)), \(journal.map { ByteBuffer(bytes: $0.1.result) }),
                    \(consumed.map(\.flow)), \(consumed.map(\.ref)), \(consumed.map(\.txId)),
                    \(produced.map(\.flow)), \(produced.map(\.state.ref.description)), \(produced.map(\.state.type)),
                    \(produced.map(\.state.owner)), \(produced.map { ByteBuffer(bytes: $0.state.data) }),
                    \(produced.map { $0.state.amount ?? 0 }), \(produced.map { $0.state.amount != nil }),
                    \(released.map(\.flow)), \(released.map(\.holder)),
                    \(messages.map(\.flow)), \(messages.map(\.message.messageId)), \(messages.map(\.message.session)),
                    \(messages.map(\.message.recipient)), \(messages.map { ByteBuffer(bytes: $0.message.payload) }),
                    \(states.map(\.0)), \(states.map(\.1.status.rawValue)), \(states.map { ByteBuffer(bytes: $0.1.result ?? []) }),
                    \(states.map { $0.1.result != nil }), \(states.map { $0.1.error ?? "" }), \(states.map { $0.1.error != nil }),
                    \(states.map { Int64($0.1.attempts) }), \(states.map { $0.1.retryAt?.microsecondsSinceEpoch ?? 0 }),
                    \(states.map { $0.1.retryAt != nil }), \(states.map(\.1.updatedAt.microsecondsSinceEpoch)),
                    \(compacted), \(EffectKind.progress),
                    \(markers.filter(\.value).map(\.key)), \(markers.filter { !$0.value }.map(\.key)), \(asked))
                """
        }
    }

    /// The local effects of a segment, gathered by kind in the batch's order, each with its flow.
    private struct Effects {
        var consumed: [(flow: String, ref: String, txId: String)] = []
        var produced: [(flow: String, state: VaultState)] = []
        var released: [(flow: String, holder: String)] = []
        var messages: [(flow: String, message: OutboxMessage)] = []

        mutating func add(_ effects: [LocalEffect], of flow: FlowID) {
            for effect in effects {
                switch effect {
                case .vault(let update):
                    consumed += update.consumed.map { (flow.rawValue, $0.description, update.txId.hex) }
                    produced += update.produced.map { (flow.rawValue, $0) }
                case .releaseSoftLocks(let holder): released.append((flow.rawValue, holder))
                case .outbox(let message): messages.append((flow.rawValue, message))
                }
            }
        }
    }
}
