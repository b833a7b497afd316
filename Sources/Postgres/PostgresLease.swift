import Coordination
import Logging
import PostgresNIO

/// Lease elections in PostgreSQL, for candidates on any machines that reach the database. Expiry
/// is judged by the database's clock (`now()`, the start of each round's transaction). A round
/// locks the election's lease row (`FOR UPDATE`), so rounds are serialised by the database.
public final class PostgresLeaseBackend: LeaseBackend {
    private let session: PostgresSession
    private let timeout: Duration

    /// - Parameter requestTimeout: the bound on one round; at most the election's `requestTimeout`.
    public init(configuration: PostgresConnection.Configuration, requestTimeout: Duration = .seconds(1),
                logger: Logger = Logger(label: "hawser.postgres")) {
        session = PostgresSession(configuration: configuration, logger: logger)
        timeout = requestTimeout
    }

    public func close() async { await session.close() }

    public func prepare() async throws {
        try await session.use(timeout: timeout * 5) { connection, logger in
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
            try await PostgresFencing.createTable(connection, logger: logger)
        }
    }

    public func round(election: String, candidate: Candidate, healthy: Bool, mayAcquire: Bool,
                      leaseDuration: Duration) async throws -> LeaseObservation {
        let ms = leaseDuration.millisecondsValue
        return try await session.use(timeout: timeout) { connection, logger in
            let addresses = candidate.addresses.joined(separator: ",")
            try await connection.query("""
                INSERT INTO hawser_candidates (election, id, addresses, healthy, seen_at) VALUES (\(election), \(candidate.id), \(addresses), \(healthy), now())
                ON CONFLICT (election, id) DO UPDATE SET addresses = EXCLUDED.addresses, healthy = EXCLUDED.healthy, seen_at = now()
                """, logger: logger)
            var row = try await Self.lease(connection, election: election, logger: logger)
            let standing = try await Self.standing(connection, election: election, ms: ms, logger: logger)
            let ids = Set(standing.map(\.id))
            switch LeaseDecision.decide(row: row, me: candidate.id, mayAcquire: mayAcquire, standing: ids) {
            case .renew:
                try await connection.query("UPDATE hawser_lease SET expires_at = now() + \(ms) * interval '1 millisecond' WHERE election = \(election)", logger: logger)
            case .acquire(let epoch, let clearTarget):
                let value = Int64(epoch.value)
                try await connection.query("""
                    UPDATE hawser_lease SET holder = \(candidate.id), epoch = \(value), expires_at = now() + \(ms) * interval '1 millisecond',
                        target = CASE WHEN \(clearTarget) THEN NULL ELSE target END
                    WHERE election = \(election)
                    """, logger: logger)
                row = LeaseRow(holder: candidate.id, epoch: epoch, live: true, preferred: row.preferred, target: clearTarget ? nil : row.target)
            case .leave:
                break
            }
            return LeaseObservation(holder: row.live ? row.holder : nil, epoch: row.epoch, preferred: row.preferred,
                                    target: row.target, standing: ids)
        }
    }

    public func release(election: String, holder: String, epoch: Epoch, handOverTo: String?) async throws {
        let value = Int64(epoch.value)
        try await session.use(timeout: timeout) { connection, logger in
            try await connection.query("""
                UPDATE hawser_lease SET holder = NULL, expires_at = now(), target = COALESCE(\(handOverTo), target)
                WHERE election = \(election) AND holder = \(holder) AND epoch = \(value)
                """, logger: logger)
        }
    }

    public func withdraw(election: String, candidate: String) async throws {
        try await session.use(timeout: timeout) { connection, logger in
            try await connection.query("DELETE FROM hawser_candidates WHERE election = \(election) AND id = \(candidate)", logger: logger)
        }
    }

    public func snapshot(election: String, leaseDuration: Duration) async throws -> ElectionSnapshot {
        let ms = leaseDuration.millisecondsValue
        return try await session.use(timeout: timeout) { connection, logger in
            let row = try await Self.lease(connection, election: election, logger: logger)
            let standing = try await Self.standing(connection, election: election, ms: ms, logger: logger)
            return ElectionSnapshot(leader: row.live ? row.holder : nil, epoch: row.epoch, candidates: standing,
                                    preferred: row.preferred, switchoverTarget: row.target)
        }
    }

    public func setPreferred(election: String, _ id: String?) async throws {
        try await session.use(timeout: timeout) { connection, logger in
            _ = try await Self.lease(connection, election: election, logger: logger)
            try await connection.query("UPDATE hawser_lease SET preferred = \(id) WHERE election = \(election)", logger: logger)
        }
    }

    public func setTarget(election: String, _ id: String, leaseDuration: Duration) async throws {
        let ms = leaseDuration.millisecondsValue
        try await session.use(timeout: timeout) { connection, logger in
            let row = try await Self.lease(connection, election: election, logger: logger)
            if row.live && row.holder == id { return }  // already leads
            let standing = try await Self.standing(connection, election: election, ms: ms, logger: logger)
            guard standing.contains(where: { $0.id == id }) else { throw CoordinationError.unknownCandidate(id) }
            try await connection.query("UPDATE hawser_lease SET target = \(id) WHERE election = \(election)", logger: logger)
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

    // MARK: Internals

    /// The election's lease row, locked until the transaction ends (created free if missing).
    private static func lease(_ connection: PostgresConnection, election: String, logger: Logger) async throws -> LeaseRow {
        try await connection.query("""
            INSERT INTO hawser_lease (election, holder, epoch, expires_at) VALUES (\(election), NULL, 0, now())
            ON CONFLICT (election) DO NOTHING
            """, logger: logger)
        let rows = try await connection.query("""
            SELECT holder, epoch, holder IS NOT NULL AND expires_at > now(), preferred, target
            FROM hawser_lease WHERE election = \(election) FOR UPDATE
            """, logger: logger)
        for try await (holder, epoch, live, preferred, target) in rows.decode((String?, Int64, Bool, String?, String?).self) {
            return LeaseRow(holder: holder, epoch: Epoch(UInt64(epoch)), live: live, preferred: preferred, target: target)
        }
        throw CoordinationError.unavailable("the lease row of \(election) vanished")
    }

    /// Healthy candidates seen within one lease duration, by id.
    private static func standing(_ connection: PostgresConnection, election: String, ms: Int64, logger: Logger) async throws -> [Candidate] {
        let rows = try await connection.query("""
            SELECT id, addresses FROM hawser_candidates
            WHERE election = \(election) AND healthy AND seen_at > now() - \(ms) * interval '1 millisecond' ORDER BY id
            """, logger: logger)
        var candidates: [Candidate] = []
        for try await (id, addresses) in rows.decode((String, String).self) {
            candidates.append(Candidate(id: id, addresses: addresses.split(separator: ",").map(String.init)))
        }
        return candidates
    }
}
