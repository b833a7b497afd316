import Embedded
import Flows
import GRDB
import Testing

/// What the hospital does with SQLite's failures (`DatabaseError: PossiblyTransientError`).
struct SQLiteTransientErrorTests {
    /// A full disk is retried with back-off; before, a flow whose write failed on it was parked
    /// ("unexpected error") and never went on once space was freed (found from outside).
    @Test func aFullDiskIsRetriedAndACorruptDatabaseIsNot() {
        let policy = HospitalPolicy()
        #expect(policy.treat(DatabaseError(resultCode: .SQLITE_FULL, message: "database or disk is full"), attempts: 0)
                == .retry(after: .milliseconds(100)))
        #expect(policy.treat(DatabaseError(resultCode: .SQLITE_IOERR_FSYNC), attempts: 3) == .retry(after: .milliseconds(800)))
        guard case .park(let reason) = policy.treat(DatabaseError(resultCode: .SQLITE_CORRUPT), attempts: 0) else {
            Issue.record("a corrupt database was not parked")
            return
        }
        #expect(reason.hasPrefix("unexpected error"))
    }
}
