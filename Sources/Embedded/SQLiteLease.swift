import Coordination
import Foundation
import GRDB

/// Lease elections in a SQLite file, for candidate processes on one machine (the file's locks do
/// not work across machines). Expiry is judged by SQLite's clock (`julianday('now')`), which is this
/// machine's clock. Every round is one IMMEDIATE transaction, so rounds of different processes
/// are serialised by the database.
public final class SQLiteLeaseBackend: LeaseBackend {
    private let db: DatabasePool

    /// - Parameter busyTimeout: how long a round waits for another process's transaction; keep it
    ///   below the election's `requestTimeout`.
    public init(path: String, busyTimeout: Duration = .milliseconds(500)) throws {
        // The epoch must never go back after a crash, or fencing would accept a stale leader.
        db = try SQLite.open(path, synchronousFull: true, busyTimeout: Double(busyTimeout.millisecondsValue) / 1000)
    }

    /// Milliseconds since 1970 by SQLite's clock.
    private static let nowMs = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

    public func prepare() async throws {
        try await transaction { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS hawser_lease (
                    election TEXT PRIMARY KEY, holder TEXT, epoch INTEGER NOT NULL,
                    expires_ms INTEGER NOT NULL, preferred TEXT, target TEXT);
                CREATE TABLE IF NOT EXISTS hawser_candidates (
                    election TEXT NOT NULL, id TEXT NOT NULL, addresses TEXT NOT NULL,
                    healthy INTEGER NOT NULL, seen_ms INTEGER NOT NULL, PRIMARY KEY (election, id));
                """)
            try SQLiteFencing.createTable(db)
        }
    }

    public func round(election: String, candidate: Candidate, healthy: Bool, mayAcquire: Bool,
                      leaseDuration: Duration) async throws -> LeaseObservation {
        let duration = leaseDuration.millisecondsValue
        return try await transaction { db in
            let now = try Int64.fetchOne(db, sql: "SELECT \(Self.nowMs)")!
            try db.execute(sql: """
                INSERT INTO hawser_candidates (election, id, addresses, healthy, seen_ms) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (election, id) DO UPDATE SET addresses = excluded.addresses, healthy = excluded.healthy, seen_ms = excluded.seen_ms
                """, arguments: [election, candidate.id, candidate.addresses.joined(separator: ","), healthy, now])
            var row = try Self.lease(db, election: election, now: now)
            let standing = try Self.standing(db, election: election, now: now, duration: duration)
            switch LeaseDecision.decide(row: row, me: candidate.id, mayAcquire: mayAcquire, standing: Set(standing.map(\.id))) {
            case .renew:
                try db.execute(sql: "UPDATE hawser_lease SET expires_ms = ? WHERE election = ?", arguments: [now + duration, election])
            case .acquire(let epoch, let clearTarget):
                try db.execute(sql: "UPDATE hawser_lease SET holder = ?, epoch = ?, expires_ms = ?, target = CASE WHEN ? THEN NULL ELSE target END WHERE election = ?",
                               arguments: [candidate.id, Int64(epoch.value), now + duration, clearTarget, election])
                row = LeaseRow(holder: candidate.id, epoch: epoch, live: true, preferred: row.preferred, target: clearTarget ? nil : row.target)
            case .leave:
                break
            }
            return LeaseObservation(holder: row.live ? row.holder : nil, epoch: row.epoch, preferred: row.preferred,
                                    target: row.target, standing: Set(standing.map(\.id)))
        }
    }

    public func release(election: String, holder: String, epoch: Epoch, handOverTo: String?) async throws {
        try await transaction { db in
            let now = try Int64.fetchOne(db, sql: "SELECT \(Self.nowMs)")!
            try db.execute(sql: """
                UPDATE hawser_lease SET holder = NULL, expires_ms = ?, target = COALESCE(?, target)
                WHERE election = ? AND holder = ? AND epoch = ?
                """, arguments: [now, handOverTo, election, holder, Int64(epoch.value)])
        }
    }

    public func withdraw(election: String, candidate: String) async throws {
        try await transaction { db in
            try db.execute(sql: "DELETE FROM hawser_candidates WHERE election = ? AND id = ?", arguments: [election, candidate])
        }
    }

    public func snapshot(election: String, leaseDuration: Duration) async throws -> ElectionSnapshot {
        try await transaction { db in
            let now = try Int64.fetchOne(db, sql: "SELECT \(Self.nowMs)")!
            let row = try Self.lease(db, election: election, now: now)
            let standing = try Self.standing(db, election: election, now: now, duration: leaseDuration.millisecondsValue)
            return ElectionSnapshot(leader: row.live ? row.holder : nil, epoch: row.epoch, candidates: standing,
                                    preferred: row.preferred, switchoverTarget: row.target)
        }
    }

    public func setPreferred(election: String, _ id: String?) async throws {
        try await transaction { db in
            let now = try Int64.fetchOne(db, sql: "SELECT \(Self.nowMs)")!
            _ = try Self.lease(db, election: election, now: now)
            try db.execute(sql: "UPDATE hawser_lease SET preferred = ? WHERE election = ?", arguments: [id, election])
        }
    }

    public func setTarget(election: String, _ id: String, leaseDuration: Duration) async throws {
        try await transaction { db in
            let now = try Int64.fetchOne(db, sql: "SELECT \(Self.nowMs)")!
            let row = try Self.lease(db, election: election, now: now)
            if row.live && row.holder == id { return }  // already leads
            let standing = try Self.standing(db, election: election, now: now, duration: leaseDuration.millisecondsValue)
            guard standing.contains(where: { $0.id == id }) else { throw CoordinationError.unknownCandidate(id) }
            try db.execute(sql: "UPDATE hawser_lease SET target = ? WHERE election = ?", arguments: [id, election])
        }
    }

    /// Fenced writes share this database: run `body` in one transaction after the fencing check.
    public func fencedWrite<T: Sendable>(resource: String, epoch: Epoch, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await transaction { db in
            try SQLiteFencing.check(db, resource: resource, epoch: epoch)
            return try body(db)
        }
    }

    public func close() async {}

    /// Runs `body` in one IMMEDIATE transaction without a fencing check (schema set-up, reads).
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await transaction(body)
    }

    // MARK: Internals

    private func transaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await db.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    /// The election's lease row (created free if missing).
    private static func lease(_ db: Database, election: String, now: Int64) throws -> LeaseRow {
        try db.execute(sql: "INSERT OR IGNORE INTO hawser_lease (election, holder, epoch, expires_ms) VALUES (?, NULL, 0, 0)", arguments: [election])
        let row = try Row.fetchOne(db, sql: "SELECT holder, epoch, expires_ms, preferred, target FROM hawser_lease WHERE election = ?", arguments: [election])!
        let expires: Int64 = row["expires_ms"]
        let holder: String? = row["holder"]
        return LeaseRow(holder: holder, epoch: Epoch(UInt64(row["epoch"] as Int64)), live: holder != nil && expires > now,
                        preferred: row["preferred"], target: row["target"])
    }

    /// Healthy candidates seen within one lease duration, by id.
    private static func standing(_ db: Database, election: String, now: Int64, duration: Int64) throws -> [Candidate] {
        try Row.fetchAll(db, sql: "SELECT id, addresses FROM hawser_candidates WHERE election = ? AND healthy AND seen_ms > ? ORDER BY id",
                         arguments: [election, now - duration]).map { row in
            let addresses: String = row["addresses"]
            return Candidate(id: row["id"], addresses: addresses.split(separator: ",").map(String.init))
        }
    }
}
