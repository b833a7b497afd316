import Coordination
import Flows
import Logging
import NIOCore
import Postgres
import PostgresNIO
import Sessions

/// The session side of the node database on PostgreSQL (`SessionStore`), with the same tables
/// and meaning as `SQLiteSessionStore`: the inbox keyed by `(session, sender, sequence)`, and
/// the outbox as the link manager reads and empties it.
public final class PostgresSessionStore: SessionStore, Sendable {
    private let database: PostgresDatabase
    private let fence: WriteFence?

    init(database: PostgresDatabase, fence: WriteFence?) {
        self.database = database
        self.fence = fence
    }

    /// Schema version 3 of the node's tables adds these.
    static let tables = [
        """
        CREATE TABLE inbox (
            session text NOT NULL,
            sender text NOT NULL,
            sequence bigint NOT NULL,
            body bytea NOT NULL,
            PRIMARY KEY (session, sender, sequence))
        """,
        "CREATE INDEX outbox_by_recipient ON outbox (recipient, seq)",
    ]

    public func acceptInbound(_ messages: [InboxMessage]) async throws -> [Bool] {
        guard !messages.isEmpty else { return [] }
        let fence = self.fence
        return try await database.transaction { connection, logger in
            try await PostgresFencing.check(connection, fence, logger: logger)
            var written = [Bool]()
            for message in messages {
                let session = message.key.session
                let rows = try await connection.query("""
                    INSERT INTO inbox (session, sender, sequence, body)
                    SELECT \(session), \(message.key.sender), \(Int64(message.key.sequence)), \(ByteBuffer(bytes: message.body))
                    WHERE EXISTS (SELECT 1 FROM flows WHERE id = \(SessionInbound.initiatorFlowId(of: session)) AND status <> ALL(\(Self.ended)))
                    OR EXISTS (SELECT 1 FROM flows WHERE client_request_id = \(SessionInbound.responderRequestId(session))
                               AND status <> ALL(\(Self.ended)))
                    ON CONFLICT DO NOTHING RETURNING 1
                    """, logger: logger)
                var inserted = false
                for try await _ in rows.decode(Int.self) { inserted = true }
                written.append(inserted)
            }
            return written
        }
    }

    public func inbound(_ key: SessionMessageKey) async throws -> InboxMessage? {
        try await database.read { connection, logger in
            let rows = try await connection.query("""
                SELECT body FROM inbox WHERE session = \(key.session) AND sender = \(key.sender) AND sequence = \(Int64(key.sequence))
                """, logger: logger)
            var found: InboxMessage?
            for try await body in rows.decode(ByteBuffer.self) { found = InboxMessage(key: key, body: Array(body.readableBytesView)) }
            return found
        }
    }

    public func outbound(limit: Int, excluding: Set<String>) async throws -> [OutboxMessage] {
        let skip = excluding.sorted()
        return try await database.read { connection, logger in
            var out = [OutboxMessage]()
            let rows = try await connection.query("""
                SELECT message_id, session, recipient, payload FROM outbox WHERE recipient <> ALL(\(skip)) ORDER BY seq LIMIT \(Int64(limit))
                """, logger: logger)
            for try await (id, session, recipient, payload) in rows.decode((String, String, String, ByteBuffer).self) {
                out.append(OutboxMessage(messageId: id, session: session, recipient: recipient, payload: Array(payload.readableBytesView)))
            }
            return out
        }
    }

    public func outboxBacklog() async throws -> [String: Int] {
        try await database.read { connection, logger in
            var backlog = [String: Int]()
            let rows = try await connection.query("SELECT recipient, count(*) FROM outbox GROUP BY recipient", logger: logger)
            for try await (recipient, count) in rows.decode((String, Int64).self) { backlog[recipient] = Int(count) }
            return backlog
        }
    }

    /// The statuses of a flow that has ended.
    private static let ended = FlowStatus.allCases.filter(\.isTerminal).map(\.rawValue)

    public func pruneInbox(limit: Int) async throws -> Int {
        let fence = self.fence
        // Lost in a crash of the database, the rows are pruned again. A row goes once no flow of
        // its session runs here (SQLiteSessionStore.pruneInbox says why).
        return try await database.transaction(waitForDisk: false) { connection, logger in
            try await PostgresFencing.check(connection, fence, logger: logger)
            let rows = try await connection.query("""
                DELETE FROM inbox WHERE (session, sender, sequence) IN (
                    SELECT session, sender, sequence FROM inbox AS i
                    WHERE NOT EXISTS (SELECT 1 FROM flows WHERE id = split_part(i.session, '/', 1) AND strpos(i.session, '/') > 0
                                                            AND status <> ALL(\(Self.ended)))
                    AND NOT EXISTS (SELECT 1 FROM flows WHERE client_request_id = \(SessionInbound.responderRequestPrefix) || i.session
                                                         AND status <> ALL(\(Self.ended)))
                    LIMIT \(Int64(limit)))
                RETURNING 1
                """, logger: logger)
            var deleted = 0
            for try await _ in rows { deleted += 1 }
            return deleted
        }
    }

    public func acknowledge(_ messageIds: [String]) async throws {
        guard !messageIds.isEmpty else { return }
        let fence = self.fence
        try await database.transaction(waitForDisk: false) { connection, logger in
            try await PostgresFencing.check(connection, fence, logger: logger)
            try await connection.query("DELETE FROM outbox WHERE message_id = ANY(\(messageIds))", logger: logger)
        }
    }
}
