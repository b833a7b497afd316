import Coordination
import Flows
import Foundation
import GRDB
import Sessions

/// The session side of the node database (`SessionStore`): the inbox, keyed by each message's
/// `(session, sender, sequence)` so a message delivered again is kept once, and the outbox as
/// the link manager reads and empties it.
public final class SQLiteSessionStore: SessionStore, Sendable {
    private let db: DatabasePool
    private let fence: WriteFence?

    init(db: DatabasePool, fence: WriteFence?) {
        self.db = db
        self.fence = fence
    }

    static func createTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS inbox (
                session TEXT NOT NULL,
                sender TEXT NOT NULL,
                sequence INTEGER NOT NULL,
                body BLOB NOT NULL,
                PRIMARY KEY (session, sender, sequence)) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS outbox_by_recipient ON outbox (recipient, seq);
            """)
    }

    /// The statuses of a flow that has ended, as SQL (`IN (...)`).
    private static let ended = FlowStatus.allCases.filter(\.isTerminal).map { "'\($0.rawValue)'" }.joined(separator: ", ")

    public func acceptInbound(_ messages: [InboxMessage]) async throws -> [Bool] {
        guard !messages.isEmpty else { return [] }
        let fence = self.fence
        return try await db.write { db in
            try SQLiteFencing.check(db, fence)
            return try messages.map { message in
                let session = message.key.session
                try db.run("""
                    INSERT OR IGNORE INTO inbox (session, sender, sequence, body) SELECT ?, ?, ?, ?
                    WHERE EXISTS (SELECT 1 FROM flows WHERE id = ? AND status NOT IN (\(Self.ended)))
                    OR EXISTS (SELECT 1 FROM flows WHERE client_request_id = ? AND status NOT IN (\(Self.ended)))
                    """, [session, message.key.sender, message.key.sequence, Data(message.body),
                          SessionInbound.initiatorFlowId(of: session), SessionInbound.responderRequestId(session)])
                return db.changesCount > 0
            }
        }
    }

    public func inbound(_ key: SessionMessageKey) async throws -> InboxMessage? {
        try db.readBlocking { db in
            try Data.fetchOne(db.cachedStatement(sql: "SELECT body FROM inbox WHERE session = ? AND sender = ? AND sequence = ?"),
                              arguments: [key.session, key.sender, key.sequence])
                .map { InboxMessage(key: key, body: [UInt8]($0)) }
        }
    }

    public func outbound(limit: Int, excluding: Set<String>) async throws -> [OutboxMessage] {
        try db.readBlocking { db in
            let skip = excluding.sorted()
            let holes = skip.isEmpty ? "" : "WHERE recipient NOT IN (\(Array(repeating: "?", count: skip.count).joined(separator: ", ")))"
            let arguments = StatementArguments(skip) + [limit]
            return try Row.fetchAll(db, sql: "SELECT message_id, session, recipient, payload FROM outbox \(holes) ORDER BY seq LIMIT ?",
                                    arguments: arguments).map { row in
                OutboxMessage(messageId: row[0], session: row[1], recipient: row[2], payload: [UInt8](row[3] as Data))
            }
        }
    }

    public func outboxBacklog() async throws -> [String: Int] {
        try await db.read { db in
            // `outbox_by_recipient` holds the rows in recipient order: a scan of the index.
            try Row.fetchAll(db, sql: "SELECT recipient, count(*) FROM outbox GROUP BY recipient")
                .reduce(into: [:]) { backlog, row in backlog[row[0] as String] = row[1] as Int }
        }
    }

    public func pruneInbox(limit: Int) async throws -> Int {
        // A row is pruned once no flow of its session runs here: both the initiator and the
        // responder do when two parties of this node are in the session, and the one that ended
        // first may have left a message for the other. The rows are looked for on a reader: the
        // scan passes every row of a running flow (20,000 in a large backlog took 87 ms), which
        // would hold the one writer. A row found stays prunable (a flow that ended does not run
        // again, and its late messages are not written).
        let keys = try await db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT session, sender, sequence FROM inbox AS i
                WHERE NOT EXISTS (SELECT 1 FROM flows WHERE id = substr(i.session, 1, instr(i.session, '/') - 1)
                                                        AND status NOT IN (\(Self.ended)))
                AND NOT EXISTS (SELECT 1 FROM flows WHERE client_request_id = ? || i.session AND status NOT IN (\(Self.ended)))
                LIMIT ?
                """, arguments: [SessionInbound.responderRequestPrefix, limit]).map { row -> [DatabaseValue] in
                [row[0], row[1], row[2]]
            }
        }
        let fence = self.fence
        // Lost in a crash of the machine, the rows are pruned again.
        return try await db.writeWithoutWaitingForDisk { db in
            try SQLiteFencing.check(db, fence)
            var deleted = 0
            for key in keys {
                try db.run("DELETE FROM inbox WHERE session = ? AND sender = ? AND sequence = ?", StatementArguments(key))
                deleted += db.changesCount
            }
            return deleted
        }
    }

    public func acknowledge(_ messageIds: [String]) async throws {
        guard !messageIds.isEmpty else { return }
        let fence = self.fence
        try await db.writeWithoutWaitingForDisk { db in
            try SQLiteFencing.check(db, fence)
            for messageId in messageIds { try db.run("DELETE FROM outbox WHERE message_id = ?", [messageId]) }
        }
    }
}
