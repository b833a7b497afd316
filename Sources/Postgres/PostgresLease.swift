import Coordination
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
        try await session.use(timeout: timeout) { connection, logger in
            let (writes, result) = try body(try await Self.read(connection, election: election, logger: logger))
            if let lease = writes.lease {
                try await connection.query("""
                    UPDATE hawser_lease SET holder = \(lease.holder), epoch = \(Int64(lease.epoch.value)),
                        expires_at = to_timestamp(\(Double(lease.expiresMs) / 1000)), preferred = \(lease.preferred), target = \(lease.target)
                    WHERE election = \(election)
                    """, logger: logger)
            }
            if let row = writes.candidate {
                let addresses = row.candidate.addresses.joined(separator: ",")
                try await connection.query("""
                    INSERT INTO hawser_candidates (election, id, addresses, healthy, seen_at, instance)
                    VALUES (\(election), \(row.candidate.id), \(addresses), \(row.healthy), to_timestamp(\(Double(row.seenMs) / 1000)), \(row.instance))
                    ON CONFLICT (election, id) DO UPDATE SET addresses = EXCLUDED.addresses, healthy = EXCLUDED.healthy,
                        seen_at = EXCLUDED.seen_at, instance = EXCLUDED.instance
                    """, logger: logger)
            }
            if let withdrawal = writes.withdraw {
                try await connection.query("""
                    DELETE FROM hawser_candidates WHERE election = \(election) AND id = \(withdrawal.id)
                        AND (instance = \(withdrawal.instance) OR instance IS NULL)
                    """, logger: logger)
            }
            return result
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

    /// The election's state, its lease row created free if missing and locked until the transaction ends.
    private static func read(_ connection: PostgresConnection, election: String, logger: Logger) async throws -> LeaseState {
        try await connection.query("""
            INSERT INTO hawser_lease (election, holder, epoch, expires_at) VALUES (\(election), NULL, 0, to_timestamp(0))
            ON CONFLICT (election) DO NOTHING
            """, logger: logger)
        var lease: LeaseRow?
        var nowMs: Int64 = 0
        let rows = try await connection.query("""
            SELECT holder, epoch, (extract(epoch FROM expires_at) * 1000)::bigint, preferred, target, (extract(epoch FROM now()) * 1000)::bigint
            FROM hawser_lease WHERE election = \(election) FOR UPDATE
            """, logger: logger)
        for try await (holder, epoch, expires, preferred, target, now) in rows.decode((String?, Int64, Int64, String?, String?, Int64).self) {
            lease = LeaseRow(holder: holder, epoch: Epoch(UInt64(max(epoch, 0))), expiresMs: expires, preferred: preferred, target: target)
            nowMs = now
        }
        guard let lease else { throw CoordinationError.unavailable("the lease row of \(election) vanished") }
        var candidates: [CandidateRow] = []
        let found = try await connection.query("""
            SELECT id, addresses, healthy, (extract(epoch FROM seen_at) * 1000)::bigint, instance
            FROM hawser_candidates WHERE election = \(election)
            """, logger: logger)
        for try await (id, addresses, healthy, seen, instance) in found.decode((String, String, Bool, Int64, String?).self) {
            candidates.append(CandidateRow(candidate: Candidate(id: id, addresses: addresses.split(separator: ",").map(String.init)),
                                           healthy: healthy, seenMs: seen, instance: instance))
        }
        return LeaseState(nowMs: nowMs, lease: lease, candidates: candidates)
    }
}
