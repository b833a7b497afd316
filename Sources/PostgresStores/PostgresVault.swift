import Coordination
import Flows
import Postgres
import HawserCore
import NIOCore
import PostgresNIO
import Vault

/// The vault on PostgreSQL, as `SQLiteVault` is on SQLite. Updates arrive as local effects
/// through `PostgresFlowStore` (`PostgresFlowCommit`). A page's cursor is the recording sequence of its last state.
///
/// SQLite runs one write transaction at a time; PostgreSQL runs them side by side, so a choice
/// (`reserve(choosing:)`) reserves its states only where they are still free when it commits
/// (the update's condition, re-checked by PostgreSQL after any concurrent writer), and is made
/// again from the start when another holder took one first.
///
/// A reservation waits for the disk like every other commit: a flow relies on it from its next
/// durable write on, which may come after a crash of the database that its pool waited out; a
/// reservation lost in that crash would leave the flow sure of a state another flow could spend.
public final class PostgresVault: VaultStore, Sendable {
    private let database: PostgresDatabase
    private let fence: WriteFence?
    static let columns = "seq, ref, type, owner, data, amount, consumed_by, locked_by"
    /// Choices made again before a contended one gives up.
    static let attempts = 100

    init(database: PostgresDatabase, fence: WriteFence?) {
        self.database = database
        self.fence = fence
    }

    public func page(_ query: VaultQuery) async throws -> VaultPage {
        let after = try Self.sequence(of: query.after)
        return try await database.read { connection, logger in try await Self.page(query, after: after, connection, logger) }
    }

    public func reserve<Tally: Sendable>(choosing query: VaultQuery, for holder: String, from start: Tally,
                                         pick: @escaping @Sendable (inout Tally, VaultState) throws -> VaultPick)
        async throws -> [VaultState]? {
        for _ in 0..<Self.attempts {
            let fence = self.fence
            let outcome: Choice
            do {
                outcome = try await database.transaction { connection, logger in
                    try await PostgresFencing.check(connection, fence, logger: logger)
                    var selection = VaultSelection(choosing: query, for: holder, from: start, pick: pick)
                    var request = selection.firstPage
                    while true {
                        let page = try await Self.page(request, after: try Self.sequence(of: request.after), connection, logger)
                        switch try selection.consider(page, of: request) {
                        case .read(let next): request = next
                        case .notEnough: return .notEnough
                        case .reserve(let taken): return try await Self.lock(taken, for: holder, connection, logger)
                        }
                    }
                }
            } catch is ContendedChoice {
                continue
            }
            switch outcome {
            case .reserved(let states): return states
            case .notEnough: return nil
            }
        }
        throw StoreDatabaseError(.unavailable, "a choice of states for \(holder) lost to other holders \(Self.attempts) times")
    }

    private enum Choice: Sendable {
        case reserved([VaultState])
        case notEnough
    }

    /// Reserves `states` for `holder` if every one is still unconsumed and free (or already its).
    private static func lock(_ states: [VaultState], for holder: String, _ connection: PostgresConnection,
                             _ logger: Logger) async throws -> Choice {
        let refs = states.map(\.ref.description)
        // Row locks taken in one order, so that two choices of the same states cannot deadlock.
        try await connection.query("SELECT ref FROM vault_states WHERE ref = ANY(\(refs)) ORDER BY ref FOR UPDATE", logger: logger)
        let rows = try await connection.query("""
            UPDATE vault_states SET locked_by = \(holder)
            WHERE ref = ANY(\(refs)) AND consumed_by IS NULL AND (locked_by IS NULL OR locked_by = \(holder)) RETURNING ref
            """, logger: logger)
        var locked = 0
        for try await _ in rows { locked += 1 }
        // Another holder reserved or consumed one meanwhile: the transaction is rolled back and
        // the choice made again.
        guard locked == refs.count else { throw ContendedChoice() }
        return .reserved(states.map { state in
            var state = state
            state.lockedBy = holder
            return state
        })
    }

    private struct ContendedChoice: Error {}

    private static func sequence(of cursor: VaultCursor?) throws -> Int64? {
        try cursor.map { cursor in
            guard let seq = cursor.sequence else { throw VaultCursorError(cursor.rawValue) }
            return seq
        }
    }

    private static func page(_ query: VaultQuery, after: Int64?, _ connection: PostgresConnection, _ logger: Logger) async throws -> VaultPage {
        var sql = SQLBuilder("SELECT \(columns) FROM vault_states WHERE true")
        if let type = query.type { sql.append(" AND type = ", type) }
        if let owner = query.owner { sql.append(" AND owner = ", owner) }
        switch query.consumption {
        case .unconsumed: sql.append(" AND consumed_by IS NULL")
        case .consumed: sql.append(" AND consumed_by IS NOT NULL")
        case .all: break
        }
        if let holder = query.availableTo {
            sql.append(" AND (locked_by IS NULL OR locked_by = ", holder)
            sql.append(")")
        }
        let ascending = query.order == .ascending
        if let after { sql.append(ascending ? " AND seq > " : " AND seq < ", after) }
        // One row more than the page says whether another page follows.
        sql.append(" ORDER BY seq \(ascending ? "ASC" : "DESC") LIMIT ", Int64(query.limit + 1))
        let rows = try await fetch(sql.query, connection, logger)
        let next = rows.count > query.limit ? VaultCursor(String(rows[query.limit - 1].seq)) : nil
        return VaultPage(states: rows.prefix(query.limit).map(\.state), next: next)
    }

    public func states(_ refs: [StateRef]) async throws -> [VaultState] {
        let wanted = refs.map(\.description)
        let found = try await database.read { connection, logger in
            try await Self.fetch("SELECT \(unescaped: Self.columns) FROM vault_states WHERE ref = ANY(\(wanted))", connection, logger)
        }
        let byRef = Dictionary(found.map { ($0.state.ref.description, $0.state) }, uniquingKeysWith: { first, _ in first })
        return wanted.compactMap { byRef[$0] }
    }

    public func balances(type: String, owner: String?) async throws -> [VaultBalance] {
        var sql = SQLBuilder("""
            SELECT owner, COUNT(*), SUM(amount)::text FROM vault_states WHERE consumed_by IS NULL AND amount IS NOT NULL
            """)
        sql.append(" AND type = ", type)
        if let owner { sql.append(" AND owner = ", owner) }
        sql.append(" GROUP BY owner ORDER BY owner")
        let built = sql.query
        return try await database.read { connection, logger in
            var out = [VaultBalance]()
            // PostgreSQL sums bigints exactly (as numeric); the text of the sum is parsed whole.
            for try await (owner, count, sum) in try await connection.query(built, logger: logger).decode((String, Int64, String).self) {
                guard let amount = Int128(sum) else { throw CanonicalDecodingError("a balance in the node database is malformed") }
                out.append(VaultBalance(type: type, owner: owner, amount: amount, states: Int(count)))
            }
            return out
        }
    }

    public func reserve(_ refs: [StateRef], for holder: String) async throws {
        let fence = self.fence
        let wanted = refs.map(\.description)
        try await database.transaction { connection, logger in
            try await PostgresFencing.check(connection, fence, logger: logger)
            // Locked in one order, so that two reservations of the same states cannot deadlock.
            let rows = try await connection.query("""
                SELECT ref, consumed_by, locked_by FROM vault_states WHERE ref = ANY(\(wanted)) ORDER BY ref FOR UPDATE
                """, logger: logger)
            var found = [String: (consumer: String?, holder: String?)]()
            for try await (ref, consumer, other) in rows.decode((String, String?, String?).self) { found[ref] = (consumer, other) }
            for ref in refs {
                guard let row = found[ref.description] else { throw VaultError(ref: ref, reason: "this vault does not hold it") }
                if let consumer = row.consumer { throw VaultError(ref: ref, reason: "consumed by \(consumer)") }
                if let other = row.holder, other != holder { throw VaultError(ref: ref, reason: "reserved by flow \(other)") }
            }
            try await connection.query("UPDATE vault_states SET locked_by = \(holder) WHERE ref = ANY(\(wanted))", logger: logger)
        }
    }

    public func release(holder: String) async throws {
        let fence = self.fence
        try await database.transaction { connection, logger in
            try await PostgresFencing.check(connection, fence, logger: logger)
            try await connection.query("UPDATE vault_states SET locked_by = NULL WHERE locked_by = \(holder)", logger: logger)
        }
    }

    private static func fetch(_ query: PostgresQuery, _ connection: PostgresConnection,
                              _ logger: Logger) async throws -> [(seq: Int64, state: VaultState)] {
        var out = [(seq: Int64, state: VaultState)]()
        let rows = try await connection.query(query, logger: logger)
        for try await (seq, refText, type, owner, data, amount, consumer, holder)
            in rows.decode((Int64, String, String, String, ByteBuffer, Int64?, String?, String?).self) {
            guard let ref = StateRef(refText) else { throw CanonicalDecodingError("a vault state ref is malformed") }
            out.append((seq, VaultState(ref: ref, type: type, owner: owner, data: Array(data.readableBytesView), amount: amount,
                                        consumedBy: consumer.flatMap(SecureHash.init(hex:)), lockedBy: holder)))
        }
        return out
    }
}
