import Coordination
import Flows
import Foundation
import GRDB
import HawserCore
import Vault

/// The vault on the node database. Updates arrive as local effects through `SQLiteFlowStore`.
/// A page's cursor is the recording sequence of its last state, so paging is a range read on an
/// index whatever the number of states before the page.
public final class SQLiteVault: VaultStore, Sendable {
    private let db: DatabasePool
    /// The columns every read selects, in the order `decode` reads them.
    private static let columns = "seq, ref, type, owner, data, amount, consumed_by, locked_by"

    private let fence: WriteFence?

    init(db: DatabasePool, fence: WriteFence?) {
        self.db = db
        self.fence = fence
    }

    public func page(_ query: VaultQuery) async throws -> VaultPage {
        let after = try Self.sequence(of: query.after)
        return try await db.read { db in try Self.page(query, after: after, db) }
    }

    /// Reads and reserves in one write transaction: no other flow takes a state in between.
    public func reserve<Tally: Sendable>(choosing query: VaultQuery, for holder: String, from start: Tally,
                                         pick: @escaping @Sendable (inout Tally, VaultState) throws -> VaultPick)
        async throws -> [VaultState]? {
        try await db.writeWithoutWaitingForDisk { db in
            try SQLiteFencing.check(db, self.fence)
            var selection = VaultSelection(choosing: query, for: holder, from: start, pick: pick)
            var request = selection.firstPage
            while true {
                switch try selection.consider(try Self.page(request, after: try Self.sequence(of: request.after), db), of: request) {
                case .read(let next): request = next
                case .notEnough: return nil
                case .reserve(let taken):
                    for state in taken {
                        try db.run("UPDATE vault_states SET locked_by = ? WHERE ref = ?", [holder, state.ref.description])
                    }
                    return taken.map { state in
                        var state = state
                        state.lockedBy = holder
                        return state
                    }
                }
            }
        }
    }

    private static func sequence(of cursor: VaultCursor?) throws -> Int64? {
        try cursor.map { cursor in
            guard let seq = cursor.sequence else { throw VaultCursorError(cursor.rawValue) }
            return seq
        }
    }

    private static func page(_ query: VaultQuery, after: Int64?, _ db: Database) throws -> VaultPage {
        var sql = "SELECT \(columns) FROM vault_states WHERE 1 = 1"
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
        let ascending = query.order == .ascending
        if let after {
            sql += ascending ? " AND seq > ?" : " AND seq < ?"
            arguments += [after]
        }
        // One row more than the page says whether another page follows.
        sql += " ORDER BY seq \(ascending ? "ASC" : "DESC") LIMIT ?"
        arguments += [query.limit + 1]
        let rows = try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
        let states = try rows.prefix(query.limit).map(decode)
        let next = rows.count > query.limit ? VaultCursor(String(rows[query.limit - 1][0] as Int64)) : nil
        return VaultPage(states: states, next: next)
    }

    public func states(_ refs: [StateRef]) async throws -> [VaultState] {
        try db.readBlocking { db in
            var found = [String: VaultState]()
            let statement = try db.cachedStatement(sql: "SELECT \(Self.columns) FROM vault_states WHERE ref = ?")
            for ref in refs {
                if let row = try Row.fetchOne(statement, arguments: [ref.description]) { found[ref.description] = try Self.decode(row) }
            }
            return refs.compactMap { found[$0.description] }
        }
    }

    public func balances(type: String, owner: String?) async throws -> [VaultBalance] {
        try await db.read { db in
            // SQLite's SUM refuses to overflow 64 bits; summing the high and the low 32 bits of
            // each amount apart cannot, and the two sums give the exact total.
            var sql = """
                SELECT owner, COUNT(*), SUM(amount >> 32), SUM(amount & 4294967295) FROM vault_states
                WHERE type = ? AND consumed_by IS NULL AND amount IS NOT NULL
                """
            var arguments: StatementArguments = [type]
            if let owner {
                sql += " AND owner = ?"
                arguments += [owner]
            }
            sql += " GROUP BY owner ORDER BY owner"
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                let high: Int64 = row[2], low: Int64 = row[3]
                return VaultBalance(type: type, owner: row[0], amount: Int128(high) << 32 + Int128(low), states: row[1])
            }
        }
    }

    public func reserve(_ refs: [StateRef], for holder: String) async throws {
        try await db.writeWithoutWaitingForDisk { db in
            try SQLiteFencing.check(db, self.fence)
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
            try SQLiteFencing.check(db, self.fence)
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
            try db.run("INSERT OR IGNORE INTO vault_states (ref, type, owner, data, amount) VALUES (?, ?, ?, ?, ?)",
                       [state.ref.description, state.type, state.owner, Data(state.data), state.amount])
        }
    }

    /// A row of `columns`, read by position: GRDB looks a column name up by lowercasing it, a
    /// cost a choice of states paid for every state it read.
    private static func decode(_ row: Row) throws -> VaultState {
        let refText: String = row[1]
        guard let ref = StateRef(refText) else { throw CanonicalDecodingError("a vault state ref is malformed") }
        let consumer: String? = row[6]
        return VaultState(ref: ref, type: row[2], owner: row[3], data: [UInt8](row[4] as Data),
                          amount: row[5], consumedBy: consumer.flatMap(SecureHash.init(hex:)), lockedBy: row[7])
    }
}
