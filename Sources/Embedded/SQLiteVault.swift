import Foundation
import GRDB
import HawserCore
import Vault

/// The vault on the node database. Updates arrive as local effects through `SQLiteFlowStore`.
public final class SQLiteVault: VaultStore, Sendable {
    private let db: DatabasePool

    init(db: DatabasePool) { self.db = db }

    public func query(_ query: VaultQuery) async throws -> [VaultState] {
        try await db.read { db in
            var sql = "SELECT ref, type, owner, data, consumed_by, locked_by FROM vault_states WHERE 1 = 1"
            var arguments: StatementArguments = []
            if let type = query.type {
                sql += " AND type = ?"
                arguments += [type]
            }
            if let owner = query.owner {
                sql += " AND owner = ?"
                arguments += [owner]
            }
            switch query.consumption {
            case .unconsumed: sql += " AND consumed_by IS NULL"
            case .consumed: sql += " AND consumed_by IS NOT NULL"
            case .all: break
            }
            if let holder = query.availableTo {
                sql += " AND (locked_by IS NULL OR locked_by = ?)"
                arguments += [holder]
            }
            sql += " ORDER BY seq LIMIT ?"
            arguments += [query.limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.decode)
        }
    }

    public func reserve(_ refs: [StateRef], for holder: String) async throws {
        try await db.write { db in
            for ref in refs {
                guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT consumed_by, locked_by FROM vault_states WHERE ref = ?"),
                                                 arguments: [ref.description]) else {
                    throw VaultError(ref: ref, reason: "this vault does not hold it")
                }
                if let consumer = row[0] as String? { throw VaultError(ref: ref, reason: "consumed by \(consumer)") }
                if let other = row[1] as String?, other != holder { throw VaultError(ref: ref, reason: "reserved by flow \(other)") }
                try db.run("UPDATE vault_states SET locked_by = ? WHERE ref = ?", [holder, ref.description])
            }
        }
    }

    public func release(holder: String) async throws {
        try await db.write { db in
            try db.run("UPDATE vault_states SET locked_by = NULL WHERE locked_by = ?", [holder])
        }
    }

    /// Applies a transaction's update inside the caller's transaction. Repeating it changes nothing.
    static func apply(_ update: VaultUpdate, _ db: Database) throws {
        for ref in update.consumed {
            try db.run("""
                UPDATE vault_states SET consumed_by = ?, locked_by = NULL WHERE ref = ? AND consumed_by IS NULL
                """, [update.txId.hex, ref.description])
        }
        for state in update.produced {
            try db.run("INSERT OR IGNORE INTO vault_states (ref, type, owner, data) VALUES (?, ?, ?, ?)",
                       [state.ref.description, state.type, state.owner, Data(state.data)])
        }
    }

    private static func decode(_ row: Row) throws -> VaultState {
        let refText: String = row[0]
        guard let ref = StateRef(refText) else { throw CanonicalDecodingError("a vault state ref is malformed") }
        let consumer: String? = row[4]
        return VaultState(ref: ref, type: row[1], owner: row[2], data: [UInt8](row[3] as Data),
                          consumedBy: consumer.flatMap(SecureHash.init(hex:)), lockedBy: row[5])
    }
}
