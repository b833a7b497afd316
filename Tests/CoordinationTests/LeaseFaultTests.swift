import Coordination
import Embedded
import Foundation
import GRDB
import HawserTestSupport
import Testing

/// The fault tests of the SQL lease, on SQLite (candidates on one machine): real
/// `hawser election run` processes making fenced writes while they lead.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct LeaseFaultTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hawser-lease-\(UUID().uuidString)").path
    var writes: String { directory + "/writes.sqlite" }

    func arguments(holdDownMs: Int = 60_000, writeIntervalMs: Int = 100) -> [String] {
        ["--sqlite", directory + "/lease.sqlite", "--lease-ms", "1000", "--renew-ms", "200", "--request-timeout-ms", "500",
         "--stand-aside-ms", "1500", "--hold-down-ms", "\(holdDownMs)", "--fenced-writes", writes,
         "--write-interval-ms", "\(writeIntervalMs)"]
    }

    func admin() throws -> LeaseAdministration {
        var configuration = LeaseConfiguration()
        configuration.leaseDuration = .seconds(1)
        return LeaseAdministration(backend: try SQLiteLeaseBackend(path: directory + "/lease.sqlite", roundsOf: configuration), configuration: configuration)
    }

    /// True when no process holds the write lock of the SQLite file at `path`.
    static func isUnlocked(_ path: String) throws -> Bool {
        var configuration = Configuration()
        configuration.busyMode = .immediateError
        let db = try DatabaseQueue(path: path, configuration: configuration)
        do {
            try db.writeWithoutTransaction { try $0.execute(sql: "BEGIN IMMEDIATE; ROLLBACK") }
            return true
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            return false
        }
    }

    func checkWrites() throws {
        #expect(FencedLog.problems(try FencedLog.writes(writes)) == [])
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test func killingTheLeaderHandsLeadershipToTheOther() async throws {
        let (first, second, b) = try await ElectionScenarios.killedLeaderIsReplaced(arguments: arguments())
        #expect(second > first, "a higher epoch (A may have begun a later term under load before it was killed)")
        b.terminate()
        try checkWrites()
    }

    @Test func aPausedLeaderStepsDownAndItsWritesAreRefusedWhenItResumes() async throws {
        try await ElectionScenarios.pausedLeaderIsFenced(arguments: arguments(writeIntervalMs: 400)) {
            try Self.isUnlocked(directory + "/lease.sqlite") && Self.isUnlocked(writes)
        }
        try checkWrites()
    }

    /// The leader stopped inside a round holds the file's write lock, which no other process can
    /// take from it: B's rounds fail, each with a problem that says so (before, only "database is
    /// locked"), and B cannot lead until A runs again. Resumed, A steps down (its lease lapsed
    /// while it was stopped) and a higher epoch leads.
    @Test func aLeaderStoppedInsideARoundBlocksTheLeaseUntilItResumes() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let arguments = ["--sqlite", directory + "/lease.sqlite", "--lease-ms", "3000", "--renew-ms", "300",
                         "--request-timeout-ms", "1500", "--hold-down-ms", "60000", "--fenced-writes", writes]
        try await LeasePauseScenarios.leaderStoppedInsideARound(arguments: arguments, directory: directory) { b in
            try await eventually("B naming the lock") { b.log.contains("held by another process") }
            #expect(b.leadingEpoch == nil)
            // Only time makes A's lease lapse while it is stopped; resumed sooner, it rightly leads on.
            try await Task.sleep(for: .seconds(3))
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test func thePreferredNodeRegainsLeadershipAfterTheHoldDown() async throws {
        let (_, a, b) = try await ElectionScenarios.preferredNodeReturns(arguments: arguments(holdDownMs: 1000),
                                                                         holdDown: .milliseconds(1000), admin: admin())
        try await b.waitUntilFollowing("A")
        a.terminate()
        b.terminate()
        try checkWrites()
    }

    @Test func aSwitchoverNeverLeavesTwoLeadersWithAValidEpoch() async throws {
        let (first, second) = try await ElectionScenarios.switchoverNeverOverlaps(arguments: arguments(writeIntervalMs: 20), admin: admin(), writes: writes)
        #expect(second > first, "a higher epoch (A may have begun a later term under load before it was killed)")
        try checkWrites()
    }
}
