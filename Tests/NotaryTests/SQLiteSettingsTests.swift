@testable import Embedded
import GRDB
import HawserTestSupport
import Testing

/// The durability promise of the embedded log, the node database and the lease rests on the
/// writer connection's `synchronous` setting; opening a WAL pool resets it to NORMAL once.
@Suite struct SQLiteSettingsTests {
    /// The writer's setting: 2 is FULL (each commit is fsynced), 1 NORMAL.
    func synchronous(_ pool: DatabasePool) throws -> Int {
        try pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") ?? -1 }
    }

    @Test func aDurableDatabaseFsyncsEachCommitAndAReplicaStoreDoesNot() throws {
        let directory = try TemporaryDirectory()
        #expect(try synchronous(SQLite.open(directory.path + "/durable.sqlite", synchronousFull: true)) == 2)
        #expect(try synchronous(SQLite.open(directory.path + "/store.sqlite", synchronousFull: false)) == 1)
    }
}
