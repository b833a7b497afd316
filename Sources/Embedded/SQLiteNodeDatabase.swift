import Coordination
import Foundation
import GRDB

/// The node's own database (SQLite, WAL, `synchronous = FULL`): flows, their journals, the
/// outbox, the inbox and the vault in one file, so that a flow's journal entry and its local effects
/// commit in one transaction.
///
/// With a `fence`, every write transaction first proves that this process owns the node's shard
/// under the newest epoch (`SQLiteFencing`): a deposed master's write is refused as a whole.
public final class SQLiteNodeDatabase: Sendable {
    public let flows: SQLiteFlowStore
    public let vault: SQLiteVault
    public let sessions: SQLiteSessionStore
    let db: DatabasePool

    public convenience init(path: String, fence: WriteFence? = nil) throws {
        let db = try SQLite.opening(path) {
            let db = try SQLite.open(path, synchronousFull: true)
            try db.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS flows (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        client_request_id TEXT UNIQUE,
                        name TEXT NOT NULL,
                        arguments BLOB NOT NULL,
                        status TEXT NOT NULL,
                        result BLOB,
                        error TEXT,
                        attempts INTEGER NOT NULL,
                        retry_at INTEGER,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL);
                    CREATE INDEX IF NOT EXISTS flows_by_status ON flows (status, seq);
                    CREATE TABLE IF NOT EXISTS journal (
                        flow_id TEXT NOT NULL,
                        sequence INTEGER NOT NULL,
                        kind TEXT NOT NULL,
                        descriptor TEXT NOT NULL,
                        result BLOB NOT NULL,
                        PRIMARY KEY (flow_id, sequence)) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS outbox (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        message_id TEXT NOT NULL UNIQUE,
                        session TEXT NOT NULL,
                        recipient TEXT NOT NULL,
                        payload BLOB NOT NULL);
                    CREATE TABLE IF NOT EXISTS vault_states (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        ref TEXT NOT NULL UNIQUE,
                        type TEXT NOT NULL,
                        owner TEXT NOT NULL,
                        data BLOB NOT NULL,
                        consumed_by TEXT,
                        locked_by TEXT,
                        amount INTEGER);
                    CREATE INDEX IF NOT EXISTS vault_by_type_owner ON vault_states (type, owner, consumed_by);
                    CREATE INDEX IF NOT EXISTS vault_by_lock ON vault_states (locked_by) WHERE locked_by IS NOT NULL;
                    CREATE TABLE IF NOT EXISTS replay_markers (flow_id TEXT PRIMARY KEY) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS notary_asks (flow_id TEXT PRIMARY KEY) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS node_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS flow_queue (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        flow_id TEXT NOT NULL UNIQUE,
                        partition INTEGER NOT NULL);
                    CREATE INDEX IF NOT EXISTS flow_queue_by_partition ON flow_queue (partition, seq);
                    """)
                try SQLiteFencing.createTable(db)
                try SQLiteSessionStore.createTables(db)
                // Databases made before states had an amount: add the column, and take the amount
                // of the states recorded then from their data's `amount`, as the token sample wrote it.
                let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(vault_states)").map { $0["name"] as String }
                if !columns.contains("amount") {
                    try db.execute(sql: """
                        ALTER TABLE vault_states ADD COLUMN amount INTEGER;
                        UPDATE vault_states SET amount = json_extract(CAST(data AS TEXT), '$.amount')
                        WHERE json_valid(CAST(data AS TEXT)) AND json_type(CAST(data AS TEXT), '$.amount') = 'integer';
                        """)
                }
            }
            return db
        }
        self.init(db, fence: fence)
    }

    /// The same database's stores with every write fenced by `fence` instead (a hot-hot node's
    /// partition), on the same connections.
    public func fenced(by fence: WriteFence) -> SQLiteNodeDatabase { SQLiteNodeDatabase(db, fence: fence) }

    private init(_ db: DatabasePool, fence: WriteFence?) {
        self.db = db
        flows = SQLiteFlowStore(db: db, fence: fence)
        vault = SQLiteVault(db: db, fence: fence)
        sessions = SQLiteSessionStore(db: db, fence: fence)
    }
}
