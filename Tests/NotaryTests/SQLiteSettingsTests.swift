@testable import Embedded
import HawserTestSupport
import Testing

/// The durability promise of the embedded log, the node database and the lease rests on the
/// writer connection's `synchronous` setting; opening a WAL pool resets it to NORMAL once.
@Suite struct SQLiteSettingsTests {
    @Test func aDurableDatabaseFsyncsEachCommitAndAReplicaStoreDoesNot() throws {
        let directory = try TemporaryDirectory()
        #expect(try SQLite.synchronous(SQLite.open(directory.path + "/durable.sqlite", synchronousFull: true)) == 2)
        #expect(try SQLite.synchronous(SQLite.open(directory.path + "/store.sqlite", synchronousFull: false)) == 1)
    }
}
