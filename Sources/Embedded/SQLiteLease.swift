import Coordination
import Foundation
import GRDB

/// Lease elections in a SQLite file, for candidate processes on one machine (the file's locks do
/// not work across machines). Expiry is judged by SQLite's clock (`julianday('now')`), which is this
/// machine's clock. Every round is one IMMEDIATE transaction, so rounds of different processes
/// are serialised by the database. This type only reads and writes rows; the rules are `LeaseRules`.
///
/// A process stopped inside a transaction (SIGSTOP, a debugger) keeps the file's write lock, and
/// no other process can take it away: every other transaction then fails after `busyTimeout`,
/// saying so, until the stopped one runs again or exits (docs/coordination.md).
public final class SQLiteLeaseBackend: LeaseBackend {
    private let db: DatabasePool
    private let path: String
    private let busyTimeout: Duration

    /// - Parameter busyTimeout: how long a transaction waits for another process's; keep it
    ///   below the election's `requestTimeout`.
    public init(path: String, busyTimeout: Duration) throws {
        // The epoch must never go back after a crash, or fencing would accept a stale leader.
        db = try SQLite.opening(path) { try SQLite.open(path, synchronousFull: true, busyTimeout: Double(busyTimeout.millisecondsValue) / 1000) }
        self.path = path
        self.busyTimeout = busyTimeout
    }

    /// The backend for elections run with `configuration`: a transaction waits up to half the
    /// request timeout for another process's (or `atLeast`, for an operator's command). An
    /// fsynced round takes seconds at times on a loaded disk; a much shorter wait than the
    /// request timeout fails every other candidate's round while the leader's commits.
    public convenience init(path: String, roundsOf configuration: LeaseConfiguration, atLeast: Duration = .zero) throws {
        try self.init(path: path, busyTimeout: max(configuration.requestTimeout / 2, atLeast))
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
            if try !db.columns(in: "hawser_candidates").contains(where: { $0.name == "instance" }) {
                try db.execute(sql: "ALTER TABLE hawser_candidates ADD COLUMN instance TEXT")
            }
            try SQLiteFencing.createTable(db)
        }
    }

    public func transaction<T: Sendable>(election: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T)) async throws -> T {
        try await transaction { db in
            let (writes, result) = try body(try Self.read(db, election: election))
            if let lease = writes.lease {
                try db.execute(sql: "UPDATE hawser_lease SET holder = ?, epoch = ?, expires_ms = ?, preferred = ?, target = ? WHERE election = ?",
                               arguments: [lease.holder, Int64(lease.epoch.value), lease.expiresMs, lease.preferred, lease.target, election])
            }
            if let row = writes.candidate {
                try db.execute(sql: """
                    INSERT INTO hawser_candidates (election, id, addresses, healthy, seen_ms, instance) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (election, id) DO UPDATE SET addresses = excluded.addresses, healthy = excluded.healthy,
                        seen_ms = excluded.seen_ms, instance = excluded.instance
                    """, arguments: [election, row.candidate.id, row.candidate.addresses.joined(separator: ","), row.healthy, row.seenMs, row.instance])
            }
            if let withdrawal = writes.withdraw {
                try db.execute(sql: "DELETE FROM hawser_candidates WHERE election = ? AND id = ? AND (instance = ? OR instance IS NULL)",
                               arguments: [election, withdrawal.id, withdrawal.instance])
            }
            return result
        }
    }

    /// Fenced writes share this database: run `body` in one transaction after the fencing check.
    public func fencedWrite<T: Sendable>(resource: String, epoch: Epoch, claiming: Bool = false,
                                         _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await transaction { db in
            if claiming {
                try SQLiteFencing.claim(db, resource: resource, epoch: epoch)
            } else {
                try SQLiteFencing.check(db, resource: resource, epoch: epoch)
            }
            return try body(db)
        }
    }

    public func close() async {}

    /// Runs `body` in one IMMEDIATE transaction without a fencing check (schema set-up, reads).
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await transaction(body)
    }

    // MARK: Internals

    /// A transaction that the file's write lock kept waiting past the busy timeout fails with
    /// `unavailable`, naming the likely cause, rather than with SQLite's bare "database is locked".
    private func transaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await db.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            throw CoordinationError.unavailable("""
                the SQLite file \(path) is held by another process: it stayed locked for longer than \(busyTimeout). \
                A process stopped or stuck inside a transaction (SIGSTOP, a debugger) keeps the write lock, and no \
                other process can write to the file until that one runs again or exits
                """)
        }
    }

    /// The election's state (its lease row created free if missing; the IMMEDIATE transaction
    /// holds the file's write lock, so nobody changes it meanwhile).
    private static func read(_ db: Database, election: String) throws -> LeaseState {
        let now = try Int64.fetchOne(db, sql: "SELECT \(Self.nowMs)")!
        try db.execute(sql: "INSERT OR IGNORE INTO hawser_lease (election, holder, epoch, expires_ms) VALUES (?, NULL, 0, 0)", arguments: [election])
        let row = try Row.fetchOne(db, sql: "SELECT holder, epoch, expires_ms, preferred, target FROM hawser_lease WHERE election = ?", arguments: [election])!
        let lease = LeaseRow(holder: row["holder"], epoch: Epoch(UInt64(max(row["epoch"] as Int64, 0))), expiresMs: row["expires_ms"],
                             preferred: row["preferred"], target: row["target"])
        let candidates = try Row.fetchAll(db, sql: "SELECT id, addresses, healthy, seen_ms, instance FROM hawser_candidates WHERE election = ?",
                                          arguments: [election]).map { row in
            let addresses: String = row["addresses"]
            return CandidateRow(candidate: Candidate(id: row["id"], addresses: addresses.split(separator: ",").map(String.init)),
                                healthy: row["healthy"], seenMs: row["seen_ms"], instance: row["instance"])
        }
        return LeaseState(nowMs: now, lease: lease, candidates: candidates)
    }
}
