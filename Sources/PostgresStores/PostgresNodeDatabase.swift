import Coordination
import Postgres

/// The node's database on PostgreSQL: flows, their journals, the outbox, the inbox and the vault, with
/// the same tables and meaning as `SQLiteNodeDatabase`, for nodes that share one database
/// (hot-warm, hot-cold). A flow's journal entry and its local effects commit in one transaction.
///
/// With a `fence`, every write transaction first proves that this process owns the node's shard
/// under the newest epoch (`PostgresFencing`): a deposed master's write is refused as a whole.
public final class PostgresNodeDatabase: Sendable {
    public let flows: PostgresFlowStore
    public let vault: PostgresVault
    public let sessions: PostgresSessionStore
    /// The pooled client; run it as a service for as long as the stores are used.
    public let database: PostgresDatabase

    /// The bound the node's pool gives its sessions (`PostgresDatabase.connect`'s `stallLimit`):
    /// a node stopped inside a transaction (a vault reservation, a claim, a commit of several
    /// segments) holds the fencing row `FOR SHARE` at most this long, so a standby's claim gets
    /// through. No healthy transaction of the node waits that long between statements or for a lock.
    public static let stallLimit: Duration = .seconds(5)

    /// Creates the node's tables in a new database or checks their version (`StoreDatabaseError`).
    public static func open(_ database: PostgresDatabase, fence: WriteFence? = nil) async throws -> PostgresNodeDatabase {
        try await schema.prepare(database)
        return PostgresNodeDatabase(database, fence: fence)
    }

    /// Whether the database holds the node's tables, read without making them.
    public static func isPresent(_ database: PostgresDatabase) async throws -> Bool { try await schema.isPresent(database) }

    /// The same database's stores with every write fenced by `fence` instead (a hot-hot node's
    /// partition), on the same pool.
    public func fenced(by fence: WriteFence) -> PostgresNodeDatabase { PostgresNodeDatabase(database, fence: fence) }

    private init(_ database: PostgresDatabase, fence: WriteFence?) {
        self.database = database
        flows = PostgresFlowStore(database: database, fence: fence)
        vault = PostgresVault(database: database, fence: fence)
        sessions = PostgresSessionStore(database: database, fence: fence)
    }

    /// Version 1: the tables of the node database as they were when PostgreSQL came; version 2
    /// adds the function that makes a group commit one round trip (`PostgresFlowCommit`); version
    /// 3 the inbox of flow sessions (`PostgresSessionStore`); version 4 the node's settings (a
    /// hot-hot node's partition count and election); version 5 a group commit that proves several
    /// fences (a hot-hot process's partitions); version 6 the same, planned to find rows by their keys
    /// however the tables have grown; version 7 the queue of starts an RPC worker leaves for the
    /// partitions' owners (`flow_queue`); version 8 the flows that have asked the notary
    /// (`notary_asks`, written by a new overload of the commit function).
    static let schema = PostgresSchema(component: "node", version: 8, statements: [
        """
        CREATE TABLE flows (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            client_request_id text UNIQUE,
            name text NOT NULL,
            arguments bytea NOT NULL,
            status text NOT NULL,
            result bytea,
            error text,
            attempts bigint NOT NULL,
            retry_at bigint,
            created_at bigint NOT NULL,
            updated_at bigint NOT NULL)
        """,
        "CREATE INDEX flows_by_status ON flows (status, seq)",
        """
        CREATE TABLE journal (
            flow_id text NOT NULL,
            sequence bigint NOT NULL,
            kind text NOT NULL,
            descriptor text NOT NULL,
            result bytea NOT NULL,
            PRIMARY KEY (flow_id, sequence))
        """,
        """
        CREATE TABLE outbox (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            message_id text NOT NULL UNIQUE,
            session text NOT NULL,
            recipient text NOT NULL,
            payload bytea NOT NULL)
        """,
        """
        CREATE TABLE vault_states (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ref text NOT NULL UNIQUE,
            type text NOT NULL,
            owner text NOT NULL,
            data bytea NOT NULL,
            consumed_by text,
            locked_by text,
            amount bigint)
        """,
        "CREATE INDEX vault_by_type_owner ON vault_states (type, owner, consumed_by)",
        "CREATE INDEX vault_by_lock ON vault_states (locked_by) WHERE locked_by IS NOT NULL",
        "CREATE TABLE replay_markers (flow_id text PRIMARY KEY)",
        askedTable,
        PostgresFencing.tableDefinition,
        PostgresFlowCommit.function,
    ] + PostgresSessionStore.tables + [settingsTable] + queueTables,
    upgrades: [1: [PostgresFlowCommit.function], 2: PostgresSessionStore.tables, 3: [settingsTable],
               4: ["DROP FUNCTION hawser_flow_commit", PostgresFlowCommit.function],
               5: ["DROP FUNCTION hawser_flow_commit", PostgresFlowCommit.function],
               6: queueTables, 7: [askedTable, PostgresFlowCommit.function]])

    static let askedTable = "CREATE TABLE notary_asks (flow_id text PRIMARY KEY)"

    static let settingsTable = "CREATE TABLE node_settings (name text PRIMARY KEY, value text NOT NULL)"
    static let queueTables = [
        """
        CREATE TABLE flow_queue (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            flow_id text NOT NULL UNIQUE,
            partition integer NOT NULL)
        """,
        "CREATE INDEX flow_queue_by_partition ON flow_queue (partition, seq)",
    ]
}
