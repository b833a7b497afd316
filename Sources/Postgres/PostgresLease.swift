import Coordination
import Foundation
import Logging
import PostgresNIO

/// Lease elections in PostgreSQL, for candidates on any machines that reach the database. Expiry
/// is judged by the database's clock (`now()`, the start of each transaction). A transaction
/// locks the election's lease row (`FOR UPDATE`), so rounds are serialised by the database.
/// This type only reads and writes rows; the rules are `LeaseRules`.
///
/// The server bounds its sessions by `requestTimeout` too (`PostgresSessionLimits`): a candidate
/// stopped inside a transaction (SIGSTOP, a hung VM) would otherwise hold the row lock for as long
/// as it is stopped, and nobody could take the lease it no longer renews.
public final class PostgresLeaseBackend: LeaseBackend {
    private let session: PostgresSession
    private let timeout: Duration

    /// - Parameter requestTimeout: the bound on one transaction; at most the election's `requestTimeout`.
    public init(configuration: PostgresConnection.Configuration, requestTimeout: Duration = .seconds(1),
                logger: Logger = Logger(label: "hawser.postgres")) {
        var configuration = configuration
        configuration.options.additionalStartupParameters += PostgresSessionLimits.parameters(requestTimeout)
        session = PostgresSession(configuration: configuration, logger: logger)
        timeout = requestTimeout
    }

    public func close() async { await session.close() }

    public func prepare() async throws {
        let bound = timeout * 5
        try await session.use(timeout: bound) { connection, logger in
            // The session's lock timeout is one round's; creating the tables may take longer.
            try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL lock_timeout = \(bound.millisecondsValue)"), logger: logger)
            // Two candidates starting together must not race on CREATE TABLE.
            try await connection.query("SELECT pg_advisory_xact_lock(7262937)", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS hawser_lease (
                    election text PRIMARY KEY, holder text, epoch bigint NOT NULL,
                    expires_at timestamptz NOT NULL, preferred text, target text)
                """, logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS hawser_candidates (
                    election text NOT NULL, id text NOT NULL, addresses text NOT NULL,
                    healthy boolean NOT NULL, seen_at timestamptz NOT NULL, PRIMARY KEY (election, id))
                """, logger: logger)
            try await connection.query("ALTER TABLE hawser_candidates ADD COLUMN IF NOT EXISTS instance text", logger: logger)
            try await PostgresFencing.createTable(connection, logger: logger)
        }
    }

    public func transaction<T: Sendable>(election: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T)) async throws -> T {
        try await LeaseRound.value(election: election, body) { round in try await transaction(rounds: [round])[0].get() }
    }

    /// Locks every round's lease row (in the elections' order, so that two processes' transactions
    /// over the same partitions never wait for each other in a cycle), reads the rows and their
    /// candidates, lets each round decide, and writes what they decided with one statement per
    /// table: the round trips of a transaction do not grow with its rounds.
    public func transaction(rounds: [LeaseRound]) async -> [Result<Void, any Error>] {
        precondition(Set(rounds.map(\.election)).count == rounds.count, "a lease transaction carries each election once")
        do {
            return try await session.use(timeout: timeout) { connection, logger in
                let states = try await Self.read(connection, elections: rounds.map(\.election), logger: logger)
                var writes: [(election: String, writes: LeaseWrites)] = []
                let results = rounds.map { round -> Result<Void, any Error> in
                    Result {
                        guard let state = states[round.election] else {
                            throw CoordinationError.unavailable("the lease row of \(round.election) vanished")
                        }
                        writes.append((round.election, try round.decide(state)))
                    }
                }
                try await Self.write(writes, connection, logger: logger)
                return results
            }
        } catch {
            return rounds.map { _ in .failure(error) }
        }
    }

    /// Runs `body` in one transaction after the fencing check on `resource`.
    public func fencedWrite<T: Sendable>(resource: String, epoch: Epoch,
                                         _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        try await session.use(timeout: timeout) { connection, logger in
            try await PostgresFencing.check(connection, resource: resource, epoch: epoch, logger: logger)
            return try await body(connection, logger)
        }
    }

    /// The elections' states, their lease rows created free if missing and locked until the
    /// transaction ends.
    private static func read(_ connection: PostgresConnection, elections: [String], logger: Logger) async throws -> [String: LeaseState] {
        let sorted = elections.sorted()
        var (nowMs, leases) = try await lock(connection, sorted, logger: logger)
        let missing = sorted.filter { leases[$0] == nil }
        if !missing.isEmpty {
            try await connection.query("""
                INSERT INTO hawser_lease (election, holder, epoch, expires_at) SELECT unnest(\(missing)::text[]), NULL, 0, to_timestamp(0)
                ON CONFLICT (election) DO NOTHING
                """, logger: logger)
            (nowMs, leases) = try await lock(connection, sorted, logger: logger)
        }
        var candidates: [String: [CandidateRow]] = [:]
        let found = try await connection.query("""
            SELECT election, id, addresses, healthy, (extract(epoch FROM seen_at) * 1000)::bigint, instance
            FROM hawser_candidates WHERE election = ANY(\(sorted)::text[])
            """, logger: logger)
        for try await (election, id, addresses, healthy, seen, instance) in found.decode((String, String, String, Bool, Int64, String?).self) {
            candidates[election, default: []].append(CandidateRow(candidate: Candidate(id: id, addresses: addresses.split(separator: ",").map(String.init)),
                                                                  healthy: healthy, seenMs: seen, instance: instance))
        }
        return leases.reduce(into: [:]) { states, entry in
            states[entry.key] = LeaseState(nowMs: nowMs, lease: entry.value, candidates: candidates[entry.key] ?? [])
        }
    }

    /// Locks the lease rows of `elections` (sorted) that exist and reads them, with the database's
    /// time (the transaction's start, the same for every round in it).
    private static func lock(_ connection: PostgresConnection, _ elections: [String], logger: Logger) async throws -> (nowMs: Int64, [String: LeaseRow]) {
        var leases: [String: LeaseRow] = [:]
        var nowMs: Int64 = 0
        let rows = try await connection.query("""
            SELECT election, holder, epoch, (extract(epoch FROM expires_at) * 1000)::bigint, preferred, target, (extract(epoch FROM now()) * 1000)::bigint
            FROM hawser_lease WHERE election = ANY(\(elections)::text[]) ORDER BY election FOR UPDATE
            """, logger: logger)
        for try await (election, holder, epoch, expires, preferred, target, now) in rows.decode((String, String?, Int64, Int64, String?, String?, Int64).self) {
            leases[election] = LeaseRow(holder: holder, epoch: Epoch(UInt64(max(epoch, 0))), expiresMs: expires, preferred: preferred, target: target)
            nowMs = now
        }
        return (nowMs, leases)
    }

    /// The rounds' writes: the lease rows, the candidates' rows, the withdrawals, a statement each.
    private static func write(_ writes: [(election: String, writes: LeaseWrites)], _ connection: PostgresConnection, logger: Logger) async throws {
        let leases = writes.compactMap { w in w.writes.lease.map { LeaseJSON(election: w.election, $0) } }
        if !leases.isEmpty {
            try await connection.query("""
                UPDATE hawser_lease AS l SET holder = w.holder, epoch = w.epoch, expires_at = to_timestamp(w.expires),
                    preferred = w.preferred, target = w.target
                FROM jsonb_to_recordset(\(try json(leases))::jsonb)
                    AS w(election text, holder text, epoch bigint, expires double precision, preferred text, target text)
                WHERE l.election = w.election
                """, logger: logger)
        }
        let candidates = writes.compactMap { w in w.writes.candidate.map { CandidateJSON(election: w.election, $0) } }
        if !candidates.isEmpty {
            try await connection.query("""
                INSERT INTO hawser_candidates (election, id, addresses, healthy, seen_at, instance)
                SELECT w.election, w.id, w.addresses, w.healthy, to_timestamp(w.seen), w.instance
                FROM jsonb_to_recordset(\(try json(candidates))::jsonb)
                    AS w(election text, id text, addresses text, healthy boolean, seen double precision, instance text)
                ON CONFLICT (election, id) DO UPDATE SET addresses = EXCLUDED.addresses, healthy = EXCLUDED.healthy,
                    seen_at = EXCLUDED.seen_at, instance = EXCLUDED.instance
                """, logger: logger)
        }
        let withdrawals = writes.compactMap { w in w.writes.withdraw.map { WithdrawalJSON(election: w.election, id: $0.id, instance: $0.instance) } }
        if !withdrawals.isEmpty {
            try await connection.query("""
                DELETE FROM hawser_candidates AS c USING jsonb_to_recordset(\(try json(withdrawals))::jsonb) AS w(election text, id text, instance text)
                WHERE c.election = w.election AND c.id = w.id AND (c.instance = w.instance OR c.instance IS NULL)
                """, logger: logger)
        }
    }

    private static func json<T: Encodable>(_ rows: T) throws -> String {
        String(decoding: try JSONEncoder().encode(rows), as: UTF8.self)
    }

    /// A lease row as `jsonb_to_recordset` reads it (times in seconds, as `to_timestamp` takes them).
    private struct LeaseJSON: Encodable {
        var election: String
        var holder: String?
        var epoch: Int64
        var expires: Double
        var preferred: String?
        var target: String?
        init(election: String, _ row: LeaseRow) {
            self.election = election
            holder = row.holder
            epoch = Int64(row.epoch.value)
            expires = Double(row.expiresMs) / 1000
            preferred = row.preferred
            target = row.target
        }
    }

    private struct CandidateJSON: Encodable {
        var election: String
        var id: String
        var addresses: String
        var healthy: Bool
        var seen: Double
        var instance: String?
        init(election: String, _ row: CandidateRow) {
            self.election = election
            id = row.candidate.id
            addresses = row.candidate.addresses.joined(separator: ",")
            healthy = row.healthy
            seen = Double(row.seenMs) / 1000
            instance = row.instance
        }
    }

    private struct WithdrawalJSON: Encodable {
        var election: String
        var id: String
        var instance: String
    }
}
