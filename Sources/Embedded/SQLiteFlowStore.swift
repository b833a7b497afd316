import Coordination
import Flows
import Foundation
import GRDB
import HawserCore
import Vault

/// The flow store on the node database: flows, journals, and the local effects (vault updates,
/// outgoing messages, lock releases) committed in the same transaction as their journal entry.
public final class SQLiteFlowStore: NodeFlowStore, Sendable {
    private let db: DatabasePool
    private let fence: WriteFence?

    init(db: DatabasePool, fence: WriteFence?) {
        self.db = db
        self.fence = fence
    }

    /// Blocks the calling thread (the group committer's) for the transaction.
    /// The engine's group committer batches its callers.
    public var batchesCommits: Bool { false }

    public func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?] {
        let fences = try fence.map { [CommitFence(resource: $0.resource, epoch: try $0.epochForWrite().value)] } ?? []
        return try await commit(writes, proving: fences)
    }

    /// Blocks the calling thread for the transaction.
    public func commit(_ writes: [FlowWrite], proving fences: [CommitFence]) async throws -> [FlowRecord?] {
        do {
            return try commitBlocking(writes, fences)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            // A write's content, not the database, is at fault: the group committer commits the others.
            throw FlowWriteRefused("SQLite refused a flow write: \(error.message ?? "constraint failed")")
        }
    }

    private func commitBlocking(_ writes: [FlowWrite], _ fences: [CommitFence]) throws -> [FlowRecord?] {
        try db.writeBlocking { db in
            for fence in fences { try SQLiteFencing.check(db, resource: fence.resource, epoch: Epoch(fence.epoch)) }
            // Flows whose start was refused in this batch: their later writes are skipped.
            var refused = Set<FlowID>()
            return try writes.map { write -> FlowRecord? in
                switch write {
                case .start(let record):
                    let stored = try Self.start(record, db)
                    if stored.id != record.id { refused.insert(record.id) }
                    return stored
                case .journal(let id, let entry, let effects):
                    guard !refused.contains(id) else { return nil }
                    try db.run("INSERT INTO journal (flow_id, sequence, kind, descriptor, result) VALUES (?, ?, ?, ?, ?)",
                               [id.rawValue, entry.sequence, entry.kind, entry.descriptor, Data(entry.result)])
                    for effect in effects { try Self.apply(effect, db) }
                    return nil
                case .state(let id, let state, let effects):
                    guard !refused.contains(id) else { return nil }
                    try db.run("""
                        UPDATE flows SET status = ?, result = ?, error = ?, attempts = ?, retry_at = ?, updated_at = ? WHERE id = ?
                        """, [state.status.rawValue, state.result.map { Data($0) }, state.error, state.attempts,
                                         state.retryAt?.microsecondsSinceEpoch, state.updatedAt.microsecondsSinceEpoch, id.rawValue])
                    for effect in effects { try Self.apply(effect, db) }
                    return nil
                case .compact(let id):
                    guard !refused.contains(id) else { return nil }
                    try db.run("DELETE FROM journal WHERE flow_id = ? AND kind <> ?", [id.rawValue, EffectKind.progress])
                    try db.run("DELETE FROM notary_asks WHERE flow_id = ?", [id.rawValue])
                    return nil
                case .replayMarker(let id, let set):
                    try db.run(set ? "INSERT OR IGNORE INTO replay_markers (flow_id) VALUES (?)"
                                   : "DELETE FROM replay_markers WHERE flow_id = ?", [id.rawValue])
                    return nil
                case .notaryAsked(let id):
                    guard !refused.contains(id) else { return nil }
                    try db.run("INSERT OR IGNORE INTO notary_asks (flow_id) VALUES (?)", [id.rawValue])
                    return nil
                }
            }
        }
    }

    private static func start(_ record: FlowRecord, _ db: Database) throws -> FlowRecord {
        if let clientRequestId = record.clientRequestId,
           let existing = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM flows WHERE client_request_id = ?"), arguments: [clientRequestId]) {
            return try decode(existing)
        }
        try db.run("""
            INSERT INTO flows (id, client_request_id, name, arguments, status, attempts, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [record.id.rawValue, record.clientRequestId, record.flowName, Data(record.arguments),
                             record.status.rawValue, record.attempts, record.createdAt.microsecondsSinceEpoch,
                             record.updatedAt.microsecondsSinceEpoch])
        return record
    }

    private static func apply(_ effect: LocalEffect, _ db: Database) throws {
        switch effect {
        case .vault(let update):
            try SQLiteVault.apply(update, db)
        case .releaseSoftLocks(let holder):
            try db.run("UPDATE vault_states SET locked_by = NULL WHERE locked_by = ?", [holder])
        case .outbox(let message):
            try db.run("INSERT OR IGNORE INTO outbox (message_id, session, recipient, payload) VALUES (?, ?, ?, ?)",
                       [message.messageId, message.session, message.recipient, Data(message.payload)])
        }
    }

    public func record(_ id: FlowID) async throws -> FlowRecord? {
        try db.readBlocking { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM flows WHERE id = ?"), arguments: [id.rawValue]).map(Self.decode)
        }
    }

    public func record(clientRequestId: String) async throws -> FlowRecord? {
        try db.readBlocking { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM flows WHERE client_request_id = ?"), arguments: [clientRequestId]).map(Self.decode)
        }
    }

    public func journal(of id: FlowID) async throws -> [JournalEntry] {
        try db.readBlocking { db in
            try Row.fetchAll(db, sql: "SELECT sequence, kind, descriptor, result FROM journal WHERE flow_id = ? ORDER BY sequence",
                             arguments: [id.rawValue]).map { row in
                JournalEntry(sequence: row[0], kind: row[1], descriptor: row[2], result: [UInt8](row[3] as Data))
            }
        }
    }

    public func list(_ query: FlowQuery) async throws -> [FlowRecord] {
        try await db.read { db in
            var sql = "SELECT * FROM flows WHERE 1 = 1"
            var arguments: StatementArguments = []
            func filter(_ condition: String, _ value: (any DatabaseValueConvertible)?) {
                guard let value else { return }
                sql += " AND " + condition
                arguments += [value]
            }
            filter("status = ?", query.status?.rawValue)
            if query.unfinished { sql += " AND status IN ('running', 'hospitalised')" }
            filter("name = ?", query.flowName)
            filter("client_request_id = ?", query.clientRequestId)
            filter("created_at >= ?", query.since?.microsecondsSinceEpoch)
            filter("created_at < ?", query.until?.microsecondsSinceEpoch)
            filter("seq > COALESCE((SELECT seq FROM flows WHERE id = ?), 0)", query.after?.rawValue)
            sql += " ORDER BY seq LIMIT ?"
            arguments += [query.limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.decode)
        }
    }

    public func resumable() async throws -> [FlowRecord] {
        try await db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM flows WHERE status = 'running' OR (status = 'hospitalised' AND retry_at IS NOT NULL) ORDER BY seq
                """).map(Self.decode)
        }
    }

    public func replayMarkers() async throws -> Set<FlowID> {
        try await db.read { db in
            Set(try String.fetchAll(db, sql: "SELECT flow_id FROM replay_markers").map(FlowID.init))
        }
    }

    public func hasAskedNotary(_ id: FlowID) async throws -> Bool {
        try db.readBlocking { db in
            try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM notary_asks WHERE flow_id = ?)"),
                              arguments: [id.rawValue]) ?? false
        }
    }

    /// Blocks the calling thread (the group committer's) for the transaction.
    public func clearReplayMarkers(_ ids: [FlowID]) async throws {
        try db.writeBlocking { db in
            for id in ids { try db.run("DELETE FROM replay_markers WHERE flow_id = ?", [id.rawValue]) }
        }
    }

    public func counts() async throws -> [FlowStatus: Int] {
        try await db.read { db in
            var out = [FlowStatus: Int]()
            for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) FROM flows GROUP BY status") {
                if let status = FlowStatus(rawValue: row[0]) { out[status] = row[1] }
            }
            return out
        }
    }

    /// Claims the store's fence at the epoch it holds (`SQLiteFencing.claim`), in a transaction of its own.
    public func claim() async throws {
        guard let fence else { return }
        let epoch = try fence.epochForWrite()
        try await db.write { db in try SQLiteFencing.claim(db, resource: fence.resource, epoch: epoch) }
    }

    public func checkClaim() async throws {
        guard let fence else { return }
        try fence.checkRecorded(try await db.read { db in try SQLiteFencing.currentEpoch(db, resource: fence.resource) })
    }

    public func setting(_ name: String, proposing value: String?) async throws -> String? {
        try await db.write { db in
            if let value {
                try db.execute(sql: "INSERT INTO node_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", arguments: [name, value])
            }
            return try String.fetchOne(db, sql: "SELECT value FROM node_settings WHERE name = ?", arguments: [name])
        }
    }

    public func setSetting(_ name: String, to value: String?) async throws {
        try await db.write { db in
            if let value {
                try db.execute(sql: "INSERT INTO node_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                               arguments: [name, value])
            } else {
                try db.execute(sql: "DELETE FROM node_settings WHERE name = ?", arguments: [name])
            }
        }
    }

    public func enqueue(_ starts: [QueuedStart]) async throws -> [FlowRecord] {
        guard !starts.isEmpty else { return [] }
        return try await db.write { db in
            try starts.map { start in
                // A client request id used earlier in `starts` is in the table by now: that flow is the answer.
                let stored = try Self.start(start.record, db)
                if stored.id == start.record.id {
                    try db.run("INSERT INTO flow_queue (flow_id, partition) VALUES (?, ?)", [start.record.id.rawValue, start.partition])
                }
                return stored
            }
        }
    }

    public func queued(in partitions: [Int], limit: Int) async throws -> [FlowRecord] {
        guard !partitions.isEmpty else { return [] }
        return try await db.read { db in
            let marks = partitions.map { _ in "?" }.joined(separator: ", ")
            return try Row.fetchAll(db, sql: """
                SELECT flows.* FROM flow_queue JOIN flows ON flows.id = flow_queue.flow_id
                WHERE flow_queue.partition IN (\(marks)) ORDER BY flow_queue.seq LIMIT ?
                """, arguments: StatementArguments(partitions + [limit])).map(Self.decode)
        }
    }

    public func queued(_ ids: [FlowID]) async throws -> [FlowRecord] {
        guard !ids.isEmpty else { return [] }
        return try db.readBlocking { db in
            let marks = ids.map { _ in "?" }.joined(separator: ", ")
            return try Row.fetchAll(db, sql: """
                SELECT flows.* FROM flow_queue JOIN flows ON flows.id = flow_queue.flow_id
                WHERE flow_queue.flow_id IN (\(marks)) ORDER BY flow_queue.seq
                """, arguments: StatementArguments(ids.map(\.rawValue))).map(Self.decode)
        }
    }

    public func dequeue(_ ids: [FlowID], proving fences: [CommitFence]) async throws {
        guard !ids.isEmpty else { return }
        try await db.write { db in
            for fence in fences { try SQLiteFencing.check(db, resource: fence.resource, epoch: Epoch(fence.epoch)) }
            for id in ids { try db.run("DELETE FROM flow_queue WHERE flow_id = ?", [id.rawValue]) }
        }
    }

    public func settings(prefix: String) async throws -> [String: String] {
        try await db.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT name, value FROM node_settings WHERE substr(name, 1, ?) = ?",
                                        arguments: [prefix.count, prefix])
            return Dictionary(uniqueKeysWithValues: rows.map { ($0[0] as String, $0[1] as String) })
        }
    }

    private static func decode(_ row: Row) throws -> FlowRecord {
        guard let status = FlowStatus(rawValue: row["status"]) else {
            throw CanonicalDecodingError("a flow's status in the node database is malformed")
        }
        return FlowRecord(
            id: FlowID(row["id"]), clientRequestId: row["client_request_id"], flowName: row["name"],
            arguments: [UInt8](row["arguments"] as Data), status: status,
            result: (row["result"] as Data?).map { [UInt8]($0) }, error: row["error"], attempts: row["attempts"],
            retryAt: (row["retry_at"] as Int64?).map(Instant.init(microsecondsSinceEpoch:)),
            createdAt: Instant(microsecondsSinceEpoch: row["created_at"]),
            updatedAt: Instant(microsecondsSinceEpoch: row["updated_at"]))
    }
}
