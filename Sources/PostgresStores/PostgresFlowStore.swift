import Coordination
import Postgres
import Flows
import HawserCore
import NIOCore
import PostgresNIO
import Vault

/// The flow store on PostgreSQL: flows, journals, and the local effects (vault updates, outgoing
/// messages, lock releases) committed in the same transaction as their journal entry, as
/// `SQLiteFlowStore` does on SQLite. With a fence, each transaction first proves the epoch
/// (`PostgresFencing`).
public final class PostgresFlowStore: NodeFlowStore, Sendable {
    private let database: PostgresDatabase
    private let fence: WriteFence?
    static let columns = "id, client_request_id, name, arguments, status, result, error, attempts, retry_at, created_at, updated_at"
    /// The same of `flows f`, joined with the start queue `q`.
    static let queueColumns = columns.split(separator: ",").map { "f." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")

    init(database: PostgresDatabase, fence: WriteFence?) {
        self.database = database
        self.fence = fence
    }

    /// The batch in one call of `hawser_flow_commit` per segment (`PostgresFlowCommit`): a batch
    /// of one segment, nearly every one, in one round trip, its own transaction; more in one
    /// transaction. The call proves the fence's epoch; if the epoch recorded is not this one (a
    /// new leader's first write, or a deposed one's), `PostgresFencing` records it or refuses
    /// it, in a transaction of its own, and the batch is tried again.
    /// The engine's group committer batches its callers.
    public var batchesCommits: Bool { false }

    public func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?] {
        let fences = try fence.map { [CommitFence(resource: $0.resource, epoch: try $0.epochForWrite().value)] } ?? []
        return try await commit(writes, proving: fences)
    }

    public func commit(_ writes: [FlowWrite], proving fences: [CommitFence]) async throws -> [FlowRecord?] {
        for _ in 0..<3 {
            do {
                return try await commit(writes, fences)
            } catch is FenceMoved {
                try await database.transaction { connection, logger in
                    for fence in fences {
                        try await PostgresFencing.check(connection, resource: fence.resource, epoch: Epoch(fence.epoch), logger: logger)
                    }
                }
            }
        }
        throw StoreDatabaseError(.unavailable, "the fences of \(fences.map(\.resource).joined(separator: ", ")) kept moving during a flow commit")
    }

    private func commit(_ writes: [FlowWrite], _ fences: [CommitFence]) async throws -> [FlowRecord?] {
        let segments = PostgresFlowCommit.segments(writes)
        let body: @Sendable (PostgresConnection, Logger) async throws -> [FlowRecord?] = { connection, logger in
            var out = [FlowRecord?](repeating: nil, count: writes.count)
            // Flows whose start was refused in this batch: their later writes are skipped.
            var refused = Set<FlowID>()
            do {
                for segment in segments {
                    try await PostgresFlowCommit.commit(writes, segment, fences: fences, into: &out, refused: &refused, connection, logger)
                }
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == PostgresFlowCommit.fenceMoved {
                throw FenceMoved()
            } catch let error as PSQLError where error.serverInfo?[.sqlState]?.hasPrefix("23") == true {
                // Integrity constraint violation: a write's content, not the database, is at fault.
                throw FlowWriteRefused("PostgreSQL refused a flow write: \(error.serverInfo?[.message] ?? "constraint violated")")
            }
            return out
        }
        return segments.count == 1 ? try await database.read(body) : try await database.transaction(body)
    }

    /// The fence's recorded epoch is not the one presented.
    private struct FenceMoved: Error {}

    /// One transaction: the fencing check at the ending term's epoch, then the delete.
    public func clearReplayMarkers(_ ids: [FlowID]) async throws {
        let flows = ids.map(\.rawValue)
        try await database.transaction { connection, logger in
            try await connection.query("DELETE FROM replay_markers WHERE flow_id = ANY (\(flows))", logger: logger)
        }
    }

    public func record(_ id: FlowID) async throws -> FlowRecord? {
        try await database.read { connection, logger in
            try await Self.fetch("SELECT \(unescaped: Self.columns) FROM flows WHERE id = \(id.rawValue)", connection, logger).first
        }
    }

    public func record(clientRequestId: String) async throws -> FlowRecord? {
        try await database.read { connection, logger in
            try await Self.fetch("SELECT \(unescaped: Self.columns) FROM flows WHERE client_request_id = \(clientRequestId)",
                                 connection, logger).first
        }
    }

    public func journal(of id: FlowID) async throws -> [JournalEntry] {
        try await database.read { connection, logger in
            let rows = try await connection.query("""
                SELECT sequence, kind, descriptor, result FROM journal WHERE flow_id = \(id.rawValue) ORDER BY sequence
                """, logger: logger)
            var out = [JournalEntry]()
            for try await (sequence, kind, descriptor, result) in rows.decode((Int64, String, String, ByteBuffer).self) {
                out.append(JournalEntry(sequence: Int(sequence), kind: kind, descriptor: descriptor, result: Array(result.readableBytesView)))
            }
            return out
        }
    }

    public func list(_ query: FlowQuery) async throws -> [FlowRecord] {
        var sql = SQLBuilder("SELECT \(Self.columns) FROM flows WHERE true")
        if let status = query.status { sql.append(" AND status = ", status.rawValue) }
        if query.unfinished { sql.append(" AND status IN ('running', 'hospitalised')") }
        if let name = query.flowName { sql.append(" AND name = ", name) }
        if let clientRequestId = query.clientRequestId { sql.append(" AND client_request_id = ", clientRequestId) }
        if let since = query.since { sql.append(" AND created_at >= ", since.microsecondsSinceEpoch) }
        if let until = query.until { sql.append(" AND created_at < ", until.microsecondsSinceEpoch) }
        if let after = query.after {
            sql.append(" AND seq > COALESCE((SELECT seq FROM flows WHERE id = ", after.rawValue)
            sql.append("), 0)")
        }
        sql.append(" ORDER BY seq LIMIT ", Int64(query.limit))
        let built = sql.query
        return try await database.read { connection, logger in try await Self.fetch(built, connection, logger) }
    }

    public func resumable() async throws -> [FlowRecord] {
        try await database.read { connection, logger in
            try await Self.fetch("""
                SELECT \(unescaped: Self.columns) FROM flows
                WHERE status = 'running' OR (status = 'hospitalised' AND retry_at IS NOT NULL) ORDER BY seq
                """, connection, logger)
        }
    }

    public func replayMarkers() async throws -> Set<FlowID> {
        try await database.read { connection, logger in
            var out = Set<FlowID>()
            for try await id in try await connection.query("SELECT flow_id FROM replay_markers", logger: logger).decode(String.self) {
                out.insert(FlowID(id))
            }
            return out
        }
    }

    public func hasAskedNotary(_ id: FlowID) async throws -> Bool {
        try await database.read { connection, logger in
            var found = false
            for try await asked in try await connection.query("SELECT EXISTS (SELECT 1 FROM notary_asks WHERE flow_id = \(id.rawValue))",
                                                               logger: logger).decode(Bool.self) {
                found = asked
            }
            return found
        }
    }

    public func counts() async throws -> [FlowStatus: Int] {
        try await database.read { connection, logger in
            var out = [FlowStatus: Int]()
            let rows = try await connection.query("SELECT status, COUNT(*) FROM flows GROUP BY status", logger: logger)
            for try await (status, count) in rows.decode((String, Int64).self) {
                if let status = FlowStatus(rawValue: status) { out[status] = Int(count) }
            }
            return out
        }
    }

    public func claim() async throws { try await database.claim(fence) }

    public func checkClaim() async throws { try await database.checkClaim(fence) }

    /// On a connection of its own: a node checks its settings at start-up, before its pool runs.
    public func setting(_ name: String, proposing value: String?) async throws -> String? {
        try await database.withSingleConnection { connection, logger in
            // One statement: the insert's row, or (the setting was recorded) the row there was.
            let rows = try await connection.query("""
                WITH inserted AS (INSERT INTO node_settings (name, value) SELECT \(name), \(value) WHERE \(value)::text IS NOT NULL
                                  ON CONFLICT (name) DO NOTHING RETURNING value)
                SELECT value FROM inserted UNION ALL SELECT value FROM node_settings WHERE name = \(name)
                """, logger: logger)
            var recorded: String?
            for try await value in rows.decode(String.self) { recorded = value }
            if recorded == nil, value != nil {
                // A proposal made at once by another process won: this insert waited for it to
                // commit and did nothing, but the statement's snapshot predates it. A new
                // statement's snapshot sees it.
                let again = try await connection.query("SELECT value FROM node_settings WHERE name = \(name)", logger: logger)
                for try await value in again.decode(String.self) { recorded = value }
            }
            return recorded
        }
    }

    public func setSetting(_ name: String, to value: String?) async throws {
        try await database.withSingleConnection { connection, logger in
            if let value {
                try await connection.query("""
                    INSERT INTO node_settings (name, value) VALUES (\(name), \(value))
                    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value
                    """, logger: logger)
            } else {
                try await connection.query("DELETE FROM node_settings WHERE name = \(name)", logger: logger)
            }
        }
    }

    public func settings(prefix: String) async throws -> [String: String] {
        try await database.read { connection, logger in
            var out = [String: String]()
            let rows = try await connection.query("SELECT name, value FROM node_settings WHERE starts_with(name, \(prefix))", logger: logger)
            for try await (name, value) in rows.decode((String, String).self) { out[name] = value }
            return out
        }
    }

    /// The start as `hawser_flow_commit` makes it, and its queue row, in one transaction.
    public func enqueue(_ starts: [QueuedStart]) async throws -> [FlowRecord] {
        guard !starts.isEmpty else { return [] }
        return try await database.transaction { connection, logger in
            var out = [FlowRecord?](repeating: nil, count: starts.count)
            var refused = Set<FlowID>()
            // One call for every start: a client request id taken (in the database, or earlier in
            // `starts`) gives that flow, and the start is refused.
            try await PostgresFlowCommit.commit(starts.map { .start($0.record) }, 0..<starts.count, fences: [], into: &out, refused: &refused,
                                                connection, logger)
            let stored = try out.map { record in
                guard let record else { throw StoreDatabaseError(.unavailable, "PostgreSQL returned no record for a start") }
                return record
            }
            let created = zip(starts, stored).filter { $0.record.id == $1.id }.map(\.0)
            if !created.isEmpty {
                try await connection.query("""
                    INSERT INTO flow_queue (flow_id, partition)
                    SELECT flow_id, partition
                    FROM unnest(\(created.map(\.record.id.rawValue))::text[], \(created.map { Int32($0.partition) })::int[])
                        WITH ORDINALITY AS start(flow_id, partition, n)
                    ORDER BY n
                    """, logger: logger)
            }
            return stored
        }
    }

    public func queued(in partitions: [Int], limit: Int) async throws -> [FlowRecord] {
        guard !partitions.isEmpty else { return [] }
        let keys = partitions.map { Int32($0) }
        return try await database.read { connection, logger in
            try await Self.fetch("""
                SELECT \(unescaped: Self.queueColumns) FROM flow_queue q JOIN flows f ON f.id = q.flow_id
                WHERE q.partition = ANY (\(keys)) ORDER BY q.seq LIMIT \(Int64(limit))
                """, connection, logger)
        }
    }

    public func queued(_ ids: [FlowID]) async throws -> [FlowRecord] {
        guard !ids.isEmpty else { return [] }
        let keys = ids.map(\.rawValue)
        return try await database.read { connection, logger in
            try await Self.fetch("""
                SELECT \(unescaped: Self.queueColumns) FROM flow_queue q JOIN flows f ON f.id = q.flow_id
                WHERE q.flow_id = ANY (\(keys)) ORDER BY q.seq
                """, connection, logger)
        }
    }

    public func dequeue(_ ids: [FlowID], proving fences: [CommitFence]) async throws {
        guard !ids.isEmpty else { return }
        let flows = ids.map(\.rawValue)
        try await database.transaction { connection, logger in
            for fence in fences {
                try await PostgresFencing.check(connection, resource: fence.resource, epoch: Epoch(fence.epoch), logger: logger)
            }
            try await connection.query("DELETE FROM flow_queue WHERE flow_id = ANY (\(flows))", logger: logger)
        }
    }

    static func fetch(_ query: PostgresQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [FlowRecord] {
        var out = [FlowRecord]()
        let rows = try await connection.query(query, logger: logger)
        for try await (id, clientRequestId, name, arguments, status, result, error, attempts, retryAt, createdAt, updatedAt)
            in rows.decode((String, String?, String, ByteBuffer, String, ByteBuffer?, String?, Int64, Int64?, Int64, Int64).self) {
            guard let status = FlowStatus(rawValue: status) else {
                throw CanonicalDecodingError("a flow's status in the node database is malformed")
            }
            out.append(FlowRecord(id: FlowID(id), clientRequestId: clientRequestId, flowName: name,
                                  arguments: Array(arguments.readableBytesView), status: status,
                                  result: result.map { Array($0.readableBytesView) }, error: error, attempts: Int(attempts),
                                  retryAt: retryAt.map(Instant.init(microsecondsSinceEpoch:)),
                                  createdAt: Instant(microsecondsSinceEpoch: createdAt), updatedAt: Instant(microsecondsSinceEpoch: updatedAt)))
        }
        return out
    }
}

/// A query whose conditions are chosen at run time, each value bound as a parameter.
struct SQLBuilder {
    private var sql: String
    private var binds = PostgresBindings()

    init(_ sql: String) { self.sql = sql }

    mutating func append(_ fragment: String) { sql += fragment }

    mutating func append<Value: PostgresDynamicTypeEncodable>(_ fragment: String, _ value: Value) {
        binds.append(value)
        sql += fragment + "$\(binds.count)"
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
}
