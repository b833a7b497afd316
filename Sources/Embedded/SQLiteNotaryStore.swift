import Coordination
import Foundation
import GRDB
import HawserCore
import Notary
import Uniqueness

/// A replica's own database of spent states and outcomes (SQLite, WAL). Effects and the chain
/// head they reach are committed in one transaction. With `durable`, every commit is fsynced
/// (`synchronous = FULL`): a replica of a cluster tells the others how far it has applied, and a
/// majority's word must survive a power cut. Alone, `synchronous = NORMAL` suffices: a crash may
/// lose the last commits, never corrupt them, and the log holds everything needed to redo them.
///
/// With a `fence` (a hot-warm notary whose replicas share the store), each batch is applied only
/// under the newest epoch of the fence's resource (`SQLiteFencing`).
public final class SQLiteNotaryStore: NotaryStore, Sendable {
    private let db: DatabasePool
    private let fence: WriteFence?

    public init(path: String, durable: Bool = false, fence: WriteFence? = nil) throws {
        self.fence = fence
        db = try SQLite.opening(path) {
            let db = try SQLite.open(path, synchronousFull: durable)
            try db.writeWithoutTransaction { db in
                // Every lookup and insert runs on the writer connection (`apply`); a large page cache
                // there keeps a store of millions of states in memory. The memory is used only as
                // pages are touched.
                try db.execute(sql: "PRAGMA cache_size = -1048576")
            }
            try db.write { db in
                // A ref is 36 bytes: the transaction id, then the output index as a big-endian u32.
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS spent (ref BLOB PRIMARY KEY, tx_id BLOB NOT NULL) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS outcomes (tx_id BLOB PRIMARY KEY, outcome BLOB NOT NULL) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS applied (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL);
                    INSERT OR IGNORE INTO applied (id, position) VALUES (1, 0);
                    """)
                if fence != nil { try SQLiteFencing.createTable(db) }
                // The chain head's hashes; NULL in a store written before the verified log.
                let columns = try db.columns(in: "applied").map(\.name)
                if !columns.contains("entry_hash") {
                    try db.execute(sql: "ALTER TABLE applied ADD COLUMN entry_hash BLOB; ALTER TABLE applied ADD COLUMN state_hash BLOB")
                    try db.execute(sql: "UPDATE applied SET entry_hash = ?, state_hash = ? WHERE position = 0",
                                   arguments: [Data(SecureHash.zero.bytes), Data(SecureHash.zero.bytes)])
                }
            }
            return db
        }
    }

    public func head() async throws -> ChainHead {
        try await db.read { db in try Self.head(db) }
    }

    static func head(_ db: Database) throws -> ChainHead {
        guard let row = try Row.fetchOne(db, sql: "SELECT position, entry_hash, state_hash FROM applied WHERE id = 1") else {
            throw corrupt("the applied position")
        }
        let position = UInt64(row[0] as Int64)
        guard let entry = (row[1] as Data?).flatMap(SecureHash.init(bytes:)),
              let state = (row[2] as Data?).flatMap(SecureHash.init(bytes:)) else {
            throw CanonicalDecodingError("notary.sqlite was written by a Hawser before the verified log (applied position \(position), no chain head): start this replica from a new data directory or from a snapshot of a current replica (docs/cluster.md, \"Upgrading\")")
        }
        return ChainHead(position: position, entryHash: entry, stateHash: state)
    }

    /// Blocks the calling thread (the replica's) for the transaction.
    public func apply(refs: [StateRef], txIds: [SecureHash],
                      decide: @escaping @Sendable (UniquenessView) -> AppliedBatch) async throws -> AppliedBatch {
        try db.writeBlocking { db in
            try SQLiteFencing.check(db, fence)
            var view = UniquenessView()
            let spentBy = try BlobStatement(db, "SELECT tx_id FROM spent WHERE ref = ?")
            for ref in refs {
                if let consumer = try spentBy.run(Self.key(ref), row: { SecureHash(bytes: $0) }) {
                    guard let consumer else { throw Self.corrupt("a stored transaction id") }
                    view.spentBy[ref] = consumer
                }
            }
            let outcomeOf = try BlobStatement(db, "SELECT outcome FROM outcomes WHERE tx_id = ?")
            for txId in txIds {
                if let bytes = try outcomeOf.run(txId.bytes, row: { [UInt8]($0) }) {
                    view.outcomes[txId] = try Self.outcome(bytes)
                }
            }
            let applied = decide(view)
            let spend = try BlobStatement(db, "INSERT INTO spent (ref, tx_id) VALUES (?, ?)")
            for (ref, txId) in applied.decision.newlySpent { _ = try spend.run(Self.key(ref), txId.bytes) { _ in () } }
            let record = try BlobStatement(db, "INSERT INTO outcomes (tx_id, outcome) VALUES (?, ?)")
            for (txId, outcome) in applied.decision.newOutcomes {
                _ = try record.run(txId.bytes, NotaryStoreEncoding.bytes(outcome)) { _ in () }
            }
            try db.run("UPDATE applied SET position = ?, entry_hash = ?, state_hash = ? WHERE id = 1",
                       [Int64(applied.head.position), Data(applied.head.entryHash.bytes), Data(applied.head.stateHash.bytes)])
            return applied
        }
    }

    public func outcome(of txId: SecureHash) async throws -> NotarisationOutcome? {
        try await db.read { db in
            try Data.fetchOne(db, sql: "SELECT outcome FROM outcomes WHERE tx_id = ?", arguments: [Data(txId.bytes)])
                .map(Self.outcome)
        }
    }

    /// Which transaction spent `ref`, if any.
    public func consumer(of ref: StateRef) async throws -> SecureHash? {
        try await db.read { db in
            try Data.fetchOne(db, sql: "SELECT tx_id FROM spent WHERE ref = ?", arguments: [Data(Self.key(ref))]).map(Self.hash)
        }
    }

    public func digest() async throws -> SecureHash {
        try await db.read { db in
            var digest = NotaryStoreEncoding.Digest()
            for table in ["spent", "outcomes"] {
                let rows = try Row.fetchCursor(db, sql: "SELECT * FROM \(table) ORDER BY 1")
                while let row = try rows.next() {
                    for column in [0, 1] { digest.add(column: row[column] as Data) }
                }
            }
            return digest.finish()
        }
    }

    static func key(_ ref: StateRef) -> [UInt8] { NotaryStoreEncoding.key(ref) }

    static func corrupt(_ what: String) -> CanonicalDecodingError { CanonicalDecodingError("\(what) in notary.sqlite is malformed") }

    static func hash(_ data: Data) throws -> SecureHash {
        guard let hash = SecureHash(bytes: data) else { throw corrupt("a stored transaction id") }
        return hash
    }

    static func outcome<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws -> NotarisationOutcome {
        try NotaryStoreEncoding.outcome(bytes)
    }
}
