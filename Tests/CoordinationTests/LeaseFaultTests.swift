import Coordination
import Embedded
import Foundation
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
        return LeaseAdministration(backend: try SQLiteLeaseBackend(path: directory + "/lease.sqlite"), configuration: configuration)
    }

    func checkWrites() throws {
        #expect(FencedLog.problems(try FencedLog.writes(writes)) == [])
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test func killingTheLeaderHandsLeadershipToTheOther() async throws {
        let a = try CandidateProcess(id: "A", arguments: arguments())
        let first = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments())
        try await b.waitUntilFollowing("A")
        a.kill()
        let second = try await b.waitUntilLeading()
        #expect(second == first + 1)
        try await b.waitUntil("an accepted write") { $0.contains { $0.event == "write" && $0.accepted == true && $0.epoch == second } }
        b.terminate()
        try checkWrites()
    }

    @Test func aPausedLeaderStepsDownAndItsWritesAreRefusedWhenItResumes() async throws {
        let a = try CandidateProcess(id: "A", arguments: arguments(writeIntervalMs: 400))
        let first = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments(writeIntervalMs: 400))
        try await b.waitUntilFollowing("A")
        let writesSoFar = a.events.filter { $0.event == "write" }.count
        try await a.waitUntil("another write") { $0.filter { $0.event == "write" }.count > writesSoFar }
        a.pause()
        let second = try await b.waitUntilLeading()
        #expect(second > first)
        try await b.waitUntil("an accepted write") { $0.contains { $0.event == "write" && $0.accepted == true && $0.epoch == second } }
        let paused = a.events.count
        a.resume()
        try await a.waitUntil("a refused write and stepping down") { events in
            let after = events.dropFirst(paused)
            return after.contains { $0.event == "write" && $0.accepted == false && $0.error == "stale_epoch" }
                && after.contains { $0.event == "follower" }
        }
        #expect(!a.events.dropFirst(paused).contains { $0.event == "write" && $0.accepted == true })
        #expect(b.leadingEpoch == second)
        a.terminate()
        b.terminate()
        try checkWrites()
    }

    @Test func thePreferredNodeRegainsLeadershipAfterTheHoldDown() async throws {
        let holdDown = Duration.milliseconds(1000)
        let args = arguments(holdDownMs: 1000)
        let b = try CandidateProcess(id: "B", arguments: args)
        _ = try await b.waitUntilLeading()
        try await admin().setPreferred("A")
        var a = try CandidateProcess(id: "A", arguments: args)
        _ = try await a.waitUntilLeading()
        a.kill()
        _ = try await b.waitUntilLeading()
        a = try CandidateProcess(id: "A", arguments: args)
        try await a.waitUntil("standing") { $0.contains { $0.event == "follower" } }
        let standing = a.events.first { $0.event == "follower" }!.t
        _ = try await a.waitUntilLeading()
        let leading = a.events.last { $0.event == "leader" }!.t
        // B first saw A standing at A's first round (before A's follower event): allow one round.
        #expect(Duration.nanoseconds(leading - standing) >= holdDown - .milliseconds(250))
        try await b.waitUntilFollowing("A")
        a.terminate()
        b.terminate()
        try checkWrites()
    }

    @Test func aSwitchoverNeverLeavesTwoLeadersWithAValidEpoch() async throws {
        try await ElectionScenarios.switchoverNeverOverlaps(arguments: arguments(writeIntervalMs: 20), admin: admin(), writes: writes)
        try checkWrites()
    }
}
