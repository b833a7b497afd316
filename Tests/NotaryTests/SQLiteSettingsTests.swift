@testable import Embedded
import Foundation
import GRDB
import HawserTestSupport
import Testing

/// The durability promise of the embedded log, the node database and the lease rests on the
/// writer connection's `synchronous` setting; opening a WAL pool resets it to NORMAL once.
@Suite(.timeLimit(.minutes(10))) struct SQLiteSettingsTests {
    /// The writer's setting: 2 is FULL (each commit is fsynced), 1 NORMAL.
    func synchronous(_ pool: DatabasePool) throws -> Int {
        try pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") ?? -1 }
    }

    @Test func aDurableDatabaseFsyncsEachCommitAndAReplicaStoreDoesNot() throws {
        let directory = try TemporaryDirectory()
        #expect(try synchronous(SQLite.open(directory.path + "/durable.sqlite", synchronousFull: true)) == 2)
        #expect(try synchronous(SQLite.open(directory.path + "/store.sqlite", synchronousFull: false)) == 1)
    }

    /// A reservation or an outbox acknowledgement commits without an fsync of its own; the
    /// writer is FULL again after it, whether it committed or threw (and then rolled back).
    @Test func aWriteThatNeedNotWaitForTheDiskLeavesEveryOtherCommitFsynced() async throws {
        let directory = try TemporaryDirectory()
        let pool = try SQLite.open(directory.path + "/node.sqlite", synchronousFull: true)
        try await pool.write { try $0.execute(sql: "CREATE TABLE t (x INTEGER)") }
        let during = try await pool.writeWithoutWaitingForDisk { db in
            try db.execute(sql: "INSERT INTO t VALUES (1)")
            return try Int.fetchOne(db, sql: "PRAGMA synchronous")
        }
        #expect(during == 1)
        #expect(try synchronous(pool) == 2)
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await pool.writeWithoutWaitingForDisk { db in
                try db.execute(sql: "INSERT INTO t VALUES (2)")
                throw Refused()
            }
        }
        #expect(try synchronous(pool) == 2)
        #expect(try await pool.read { try Int.fetchAll($0, sql: "SELECT x FROM t") } == [1])
    }

    /// A caller cancelled while its write runs: the write completes and FULL is restored. GRDB
    /// fails every statement of a cancelled task's access, and the restoring statement's failure
    /// stopped the process (a shutdown cancels the reservations in flight).
    @Test func aWriteWhoseCallerIsCancelledMidwayStillRestoresFull() async throws {
        let directory = try TemporaryDirectory()
        let pool = try SQLite.open(directory.path + "/node.sqlite", synchronousFull: true)
        try await pool.write { try $0.execute(sql: "CREATE TABLE t (x INTEGER)") }
        let (inside, insideSignal) = AsyncStream.makeStream(of: Void.self)
        let cancelled = DispatchSemaphore(value: 0)
        let writer = Task {
            try await pool.writeWithoutWaitingForDisk { db in
                insideSignal.yield()
                cancelled.wait()  // holds GRDB's writer thread, not a test's, until the cancel
                try db.execute(sql: "INSERT INTO t VALUES (1)")
            }
        }
        for await _ in inside { break }
        writer.cancel()
        cancelled.signal()
        _ = await writer.result
        #expect(try synchronous(pool) == 2)
        #expect(try await pool.read { try Int.fetchAll($0, sql: "SELECT x FROM t") } == [1])
    }
}
