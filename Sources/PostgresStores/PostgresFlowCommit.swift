import Flows
import HawserCore
import NIOCore
import PostgresNIO
import Vault

/// A group commit on PostgreSQL in a few statements, whatever the number of flows: each kind of
/// write of a batch goes to the server as arrays in one statement, in the order start, journal,
/// effects, state, compaction, replay marker. One statement per write made a commit of 64 flows
/// several hundred round trips, and the commit thread the bottleneck (364 flows/s).
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
        case .journal: 1
        case .state: 2
        case .compact: 3
        case .replayMarker: 4
        }
    }

    static func flow(_ write: FlowWrite) -> FlowID {
        switch write {
        case .start(let record): record.id
        case .journal(let id, _, _), .state(let id, _, _), .compact(let id), .replayMarker(let id, _): id
        }
    }

    /// Consecutive ranges of `writes` in which no flow has a write of an earlier phase after a later one.
    static func segments(_ writes: [FlowWrite]) -> [Range<Int>] {
        var out = [Range<Int>]()
        var start = 0
        var reached = [FlowID: Int]()
        for (index, write) in writes.enumerated() {
            let (id, phase) = (flow(write), phase(write))
            if let last = reached[id], phase < last {
                out.append(start..<index)
                start = index
                reached = [:]
            }
            reached[id] = phase
        }
        if start < writes.count { out.append(start..<writes.count) }
        return out
    }

    /// Commits `writes[range]` on `connection`, filling `out` for its starts and `refused` with
    /// flows whose start found its client request id taken.
    static func commit(_ writes: [FlowWrite], _ range: Range<Int>, into out: inout [FlowRecord?], refused: inout Set<FlowID>,
                       _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await starts(writes, range, into: &out, refused: &refused, connection, logger)
        var journal = [(FlowID, JournalEntry)](), states = [FlowID: FlowState](), stateOrder = [FlowID]()
        var compacted = [String](), markers = [String: Bool](), effects = Effects()
        for write in writes[range] {
            switch write {
            case .start: break
            case .journal(let id, let entry, let local) where !refused.contains(id):
                journal.append((id, entry))
                try effects.add(local)
            case .state(let id, let state, let local) where !refused.contains(id):
                if states.updateValue(state, forKey: id) == nil { stateOrder.append(id) }
                try effects.add(local)
            case .compact(let id) where !refused.contains(id): compacted.append(id.rawValue)
            case .replayMarker(let id, let set): markers[id.rawValue] = set
            default: break  // a write of a flow whose start was refused
            }
        }
        if !journal.isEmpty {
            try await connection.query("""
                INSERT INTO journal (flow_id, sequence, kind, descriptor, result)
                SELECT flow_id, sequence, kind, descriptor, result
                FROM unnest(\(journal.map(\.0.rawValue)), \(journal.map { Int64($0.1.sequence) }), \(journal.map(\.1.kind)),
                            \(journal.map(\.1.descriptor)), \(journal.map { ByteBuffer(bytes: $0.1.result) }))
                    WITH ORDINALITY AS j(flow_id, sequence, kind, descriptor, result, position)
                ORDER BY position
                """, logger: logger)
        }
        try await effects.apply(connection, logger)
        if !stateOrder.isEmpty {
            let rows = stateOrder.map { ($0.rawValue, states[$0]!) }
            try await connection.query("""
                UPDATE flows SET status = s.status, result = CASE WHEN s.has_result THEN s.result END,
                    error = CASE WHEN s.has_error THEN s.error END, attempts = s.attempts,
                    retry_at = CASE WHEN s.has_retry THEN s.retry_at END, updated_at = s.updated_at
                FROM unnest(\(rows.map(\.0)), \(rows.map(\.1.status.rawValue)), \(rows.map { ByteBuffer(bytes: $0.1.result ?? []) }),
                            \(rows.map { $0.1.result != nil }), \(rows.map { $0.1.error ?? "" }), \(rows.map { $0.1.error != nil }),
                            \(rows.map { Int64($0.1.attempts) }), \(rows.map { $0.1.retryAt?.microsecondsSinceEpoch ?? 0 }),
                            \(rows.map { $0.1.retryAt != nil }), \(rows.map(\.1.updatedAt.microsecondsSinceEpoch)))
                    AS s(id, status, result, has_result, error, has_error, attempts, retry_at, has_retry, updated_at)
                WHERE flows.id = s.id
                """, logger: logger)
        }
        if !compacted.isEmpty {
            try await connection.query("DELETE FROM journal WHERE flow_id = ANY(\(compacted)) AND kind <> \(EffectKind.progress)", logger: logger)
        }
        let set = markers.filter(\.value).map(\.key), cleared = markers.filter { !$0.value }.map(\.key)
        if !set.isEmpty {
            try await connection.query("INSERT INTO replay_markers (flow_id) SELECT unnest(\(set)) ON CONFLICT DO NOTHING", logger: logger)
        }
        if !cleared.isEmpty {
            try await connection.query("DELETE FROM replay_markers WHERE flow_id = ANY(\(cleared))", logger: logger)
        }
    }

    /// Inserts the segment's new flows; a start whose client request id is taken (in the database
    /// or earlier in the batch) gets the flow that has it, and its flow is refused.
    private static func starts(_ writes: [FlowWrite], _ range: Range<Int>, into out: inout [FlowRecord?], refused: inout Set<FlowID>,
                               _ connection: PostgresConnection, _ logger: Logger) async throws {
        var fresh = [(index: Int, record: FlowRecord)](), firstWith = [String: Int](), repeats = [(index: Int, record: FlowRecord, first: Int)]()
        for index in range {
            guard case .start(let record) = writes[index] else { continue }
            if let key = record.clientRequestId {
                if let first = firstWith[key] {
                    repeats.append((index, record, first))
                    continue
                }
                firstWith[key] = index
            }
            fresh.append((index, record))
        }
        guard !fresh.isEmpty else { return }
        let records = fresh.map(\.record)
        let rows = try await connection.query("""
            INSERT INTO flows (id, client_request_id, name, arguments, status, attempts, created_at, updated_at)
            SELECT id, CASE WHEN has_key THEN key END, name, arguments, status, attempts, created_at, updated_at
            FROM unnest(\(records.map(\.id.rawValue)), \(records.map { $0.clientRequestId ?? "" }), \(records.map { $0.clientRequestId != nil }),
                        \(records.map(\.flowName)), \(records.map { ByteBuffer(bytes: $0.arguments) }), \(records.map(\.status.rawValue)),
                        \(records.map { Int64($0.attempts) }), \(records.map(\.createdAt.microsecondsSinceEpoch)),
                        \(records.map(\.updatedAt.microsecondsSinceEpoch)))
                WITH ORDINALITY AS f(id, key, has_key, name, arguments, status, attempts, created_at, updated_at, position)
            ORDER BY position
            ON CONFLICT (client_request_id) DO NOTHING RETURNING id
            """, logger: logger)
        var inserted = Set<String>()
        for try await id in rows.decode(String.self) { inserted.insert(id) }
        let taken = fresh.filter { !inserted.contains($0.record.id.rawValue) }.compactMap(\.record.clientRequestId)
        var existing = [String: FlowRecord]()
        if !taken.isEmpty {
            for record in try await PostgresFlowStore.fetch("""
                SELECT \(unescaped: PostgresFlowStore.columns) FROM flows WHERE client_request_id = ANY(\(taken))
                """, connection, logger) {
                existing[record.clientRequestId ?? ""] = record
            }
        }
        for (index, record) in fresh {
            if inserted.contains(record.id.rawValue) {
                out[index] = record
            } else {
                guard let key = record.clientRequestId, let stored = existing[key] else {
                    throw CanonicalDecodingError("a flow start was neither inserted nor found by its client request id")
                }
                out[index] = stored
                if stored.id != record.id { refused.insert(record.id) }
            }
        }
        for (index, record, first) in repeats {
            out[index] = out[first]
            if out[first]?.id != record.id { refused.insert(record.id) }
        }
    }

    /// The local effects of a segment, gathered by kind in the batch's order.
    private struct Effects {
        var consumed: [(ref: String, txId: String)] = []
        var consumedRefs = Set<String>()
        var produced: [VaultState] = []
        var released: [String] = []
        var messages: [OutboxMessage] = []

        mutating func add(_ effects: [any LocalEffect]) throws {
            for effect in effects {
                switch effect {
                case let update as VaultUpdate:
                    // The first consumption of a ref wins, as applied one by one.
                    for ref in update.consumed where consumedRefs.insert(ref.description).inserted {
                        consumed.append((ref.description, update.txId.hex))
                    }
                    produced += update.produced
                case let release as ReleaseSoftLocks: released.append(release.holder)
                case let message as OutboxMessage: messages.append(message)
                default: throw UnsupportedEffect(description: "the node database cannot apply a \(type(of: effect))")
                }
            }
        }

        func apply(_ connection: PostgresConnection, _ logger: Logger) async throws {
            if !consumed.isEmpty {
                try await connection.query("""
                    UPDATE vault_states SET consumed_by = c.tx_id, locked_by = NULL
                    FROM unnest(\(consumed.map(\.ref)), \(consumed.map(\.txId))) AS c(ref, tx_id)
                    WHERE vault_states.ref = c.ref AND vault_states.consumed_by IS NULL
                    """, logger: logger)
            }
            if !produced.isEmpty { try await PostgresVault.insert(produced, connection, logger) }
            if !released.isEmpty {
                try await connection.query("UPDATE vault_states SET locked_by = NULL WHERE locked_by = ANY(\(released))", logger: logger)
            }
            if !messages.isEmpty {
                try await connection.query("""
                    INSERT INTO outbox (message_id, session, recipient, payload)
                    SELECT message_id, session, recipient, payload
                    FROM unnest(\(messages.map(\.messageId)), \(messages.map(\.session)), \(messages.map(\.recipient)),
                                \(messages.map { ByteBuffer(bytes: $0.payload) })) WITH ORDINALITY AS m(message_id, session, recipient, payload, position)
                    ORDER BY position
                    ON CONFLICT (message_id) DO NOTHING
                    """, logger: logger)
            }
        }
    }
}
