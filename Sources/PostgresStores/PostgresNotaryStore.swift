import Coordination
import HawserCore
import NIOCore
import Notary
import Postgres
import PostgresNIO
import Uniqueness

/// The notary's store of spent states and outcomes on PostgreSQL, as `SQLiteNotaryStore` is on
/// SQLite, in the same encoding (`NotaryStoreEncoding`): effects and the chain head they reach
/// commit in one transaction. For a notary whose processes share the database (hot-warm) give a
/// `fence`: a batch is applied only under the newest epoch of its resource.
public final class PostgresNotaryStore: NotaryStore, Sendable {
    let database: PostgresDatabase
    private let fence: WriteFence?

    /// Creates the notary's tables in a new database or checks their version (`StoreDatabaseError`).
    public static func open(_ database: PostgresDatabase, fence: WriteFence? = nil) async throws -> PostgresNotaryStore {
        try await schema.prepare(database)
        return PostgresNotaryStore(database: database, fence: fence)
    }

    /// Whether the database holds the notary's tables (its log's too), read without making them.
    public static func isPresent(_ database: PostgresDatabase) async throws -> Bool { try await schema.isPresent(database) }

    private init(database: PostgresDatabase, fence: WriteFence?) {
        self.database = database
        self.fence = fence
    }

    /// A new owner's claim of the fence (`PostgresDatabase.claim`), after which no write of a
    /// former owner commits.
    public func claim() async throws { try await database.claim(fence) }

    /// Whether the fence still owns the store (`PostgresDatabase.checkClaim`): a read.
    public func checkClaim() async throws { try await database.checkClaim(fence) }

    /// The bound a fenced notary's pool gives its sessions (`PostgresDatabase.connect`'s
    /// `stallLimit`): a process that stalls inside a transaction (paused, partitioned) holds the
    /// fencing row at most this long; otherwise a paused former owner would stop the new owner's
    /// claim for as long as it stays paused. No healthy transaction of the notary waits that long
    /// between statements or for a lock.
    public static let stallLimit: Duration = .seconds(5)

    public func head() async throws -> ChainHead {
        try await database.read { connection, logger in try await Self.head(connection, logger, lock: false) }
    }

    private static func head(_ connection: PostgresConnection, _ logger: Logger, lock: Bool) async throws -> ChainHead {
        let rows = try await connection.query("""
            SELECT position, entry_hash, state_hash FROM notary_applied WHERE id = 1 \(unescaped: lock ? "FOR UPDATE" : "")
            """, logger: logger)
        for try await (position, entry, state) in rows.decode((Int64, ByteBuffer, ByteBuffer).self) {
            guard let entry = SecureHash(bytes: Array(entry.readableBytesView)), let state = SecureHash(bytes: Array(state.readableBytesView)) else {
                throw corrupt("the chain head")
            }
            return ChainHead(position: UInt64(position), entryHash: entry, stateHash: state)
        }
        throw corrupt("the applied position")
    }

    public func apply(refs: [StateRef], txIds: [SecureHash],
                      decide: @escaping @Sendable (UniquenessView) -> AppliedBatch) async throws -> AppliedBatch {
        let fence = self.fence
        return try await database.transaction { connection, logger in
            try await PostgresFencing.check(connection, fence, logger: logger)
            // Batches are applied one at a time: the head row is locked until this one commits.
            _ = try await Self.head(connection, logger, lock: true)
            var view = UniquenessView()
            let keys = refs.map { ByteBuffer(bytes: NotaryStoreEncoding.key($0)) }
            let byKey = Dictionary(zip(keys, refs), uniquingKeysWith: { first, _ in first })
            if !keys.isEmpty {
                let rows = try await connection.query("SELECT ref, tx_id FROM notary_spent WHERE ref = ANY(\(keys))", logger: logger)
                for try await (key, txId) in rows.decode((ByteBuffer, ByteBuffer).self) {
                    guard let ref = byKey[key], let consumer = SecureHash(bytes: Array(txId.readableBytesView)) else {
                        throw Self.corrupt("a stored transaction id")
                    }
                    view.spentBy[ref] = consumer
                }
            }
            if !txIds.isEmpty {
                let ids = txIds.map { ByteBuffer(bytes: $0.bytes) }
                let rows = try await connection.query("SELECT tx_id, outcome FROM notary_outcomes WHERE tx_id = ANY(\(ids))", logger: logger)
                for try await (txId, outcome) in rows.decode((ByteBuffer, ByteBuffer).self) {
                    guard let txId = SecureHash(bytes: Array(txId.readableBytesView)) else { throw Self.corrupt("a stored transaction id") }
                    view.outcomes[txId] = try NotaryStoreEncoding.outcome(outcome.readableBytesView)
                }
            }
            let applied = decide(view)
            let spent = applied.decision.newlySpent
            if !spent.isEmpty {
                // A ref spent twice violates the key: nothing of the batch is committed.
                try await connection.query("""
                    INSERT INTO notary_spent (ref, tx_id)
                    SELECT * FROM unnest(\(spent.map { ByteBuffer(bytes: NotaryStoreEncoding.key($0.0)) }), \(spent.map { ByteBuffer(bytes: $0.1.bytes) }))
                    """, logger: logger)
            }
            let outcomes = applied.decision.newOutcomes
            if !outcomes.isEmpty {
                try await connection.query("""
                    INSERT INTO notary_outcomes (tx_id, outcome)
                    SELECT * FROM unnest(\(outcomes.map { ByteBuffer(bytes: $0.0.bytes) }),
                                         \(outcomes.map { ByteBuffer(bytes: NotaryStoreEncoding.bytes($0.1)) }))
                    """, logger: logger)
            }
            let head = applied.head
            try await connection.query("""
                UPDATE notary_applied SET position = \(Int64(head.position)), entry_hash = \(ByteBuffer(bytes: head.entryHash.bytes)),
                    state_hash = \(ByteBuffer(bytes: head.stateHash.bytes)) WHERE id = 1
                """, logger: logger)
            return applied
        }
    }

    public func outcome(of txId: SecureHash) async throws -> NotarisationOutcome? {
        try await database.read { connection, logger in
            let rows = try await connection.query("SELECT outcome FROM notary_outcomes WHERE tx_id = \(ByteBuffer(bytes: txId.bytes))",
                                                  logger: logger)
            for try await outcome in rows.decode(ByteBuffer.self) { return try NotaryStoreEncoding.outcome(outcome.readableBytesView) }
            return nil
        }
    }

    /// Which transaction spent `ref`, if any.
    public func consumer(of ref: StateRef) async throws -> SecureHash? {
        try await database.read { connection, logger in
            let rows = try await connection.query("""
                SELECT tx_id FROM notary_spent WHERE ref = \(ByteBuffer(bytes: NotaryStoreEncoding.key(ref)))
                """, logger: logger)
            for try await txId in rows.decode(ByteBuffer.self) {
                guard let hash = SecureHash(bytes: Array(txId.readableBytesView)) else { throw Self.corrupt("a stored transaction id") }
                return hash
            }
            return nil
        }
    }

    public func digest() async throws -> SecureHash {
        try await database.read { connection, logger in
            var digest = NotaryStoreEncoding.Digest()
            // bytea orders byte by byte, as SQLite's blobs do: the digest matches a SQLite replica's.
            for query: PostgresQuery in ["SELECT ref, tx_id FROM notary_spent ORDER BY ref", "SELECT tx_id, outcome FROM notary_outcomes ORDER BY tx_id"] {
                for try await (key, value) in try await connection.query(query, logger: logger).decode((ByteBuffer, ByteBuffer).self) {
                    digest.add(column: key.readableBytesView)
                    digest.add(column: value.readableBytesView)
                }
            }
            return digest.finish()
        }
    }

    static func corrupt(_ what: String) -> CanonicalDecodingError { CanonicalDecodingError("\(what) in the notary's PostgreSQL tables is malformed") }

    /// Version 1: the notary's log, spent states, outcomes and chain head.
    static let schema = PostgresSchema(component: "notary", version: 1, statements: [
        "CREATE TABLE notary_log (position bigint PRIMARY KEY, payload bytea NOT NULL)",
        "CREATE TABLE notary_spent (ref bytea PRIMARY KEY, tx_id bytea NOT NULL)",
        "CREATE TABLE notary_outcomes (tx_id bytea PRIMARY KEY, outcome bytea NOT NULL)",
        """
        CREATE TABLE notary_applied (
            id integer PRIMARY KEY CHECK (id = 1), position bigint NOT NULL, entry_hash bytea NOT NULL, state_hash bytea NOT NULL)
        """,
        "INSERT INTO notary_applied (id, position, entry_hash, state_hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'))",
        PostgresFencing.tableDefinition,
    ])
}
