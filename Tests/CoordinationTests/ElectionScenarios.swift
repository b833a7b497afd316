import Coordination
import Testing

/// Fault scenarios that every election backend must pass, run by `LeaseFaultTests` and
/// `ZooKeeperFaultTests` with their own candidate arguments, administration and write log.
enum ElectionScenarios {
    /// A switchover from A to B: A steps down before B leads, B's epoch is the next one, and in
    /// the store every write of A committed before any write of B.
    static func switchoverNeverOverlaps(arguments: [String], admin: any ElectionAdministration, writes: String) async throws {
        let a = try CandidateProcess(id: "A", arguments: arguments)
        let first = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments)
        try await b.waitUntilFollowing("A")
        try await a.waitUntil("a few writes") { $0.filter { $0.event == "write" }.count >= 5 }
        try await admin.switchover(to: "B")
        let second = try await b.waitUntilLeading()
        #expect(second == first + 1)
        try await b.waitUntil("a few writes") { $0.filter { $0.event == "write" && $0.accepted == true }.count >= 5 }
        let stepDown = try #require(a.events.first { $0.event == "follower" && $0.t > a.events.first { $0.event == "leader" }!.t })
        let takeOver = b.events.first { $0.event == "leader" }!
        #expect(stepDown.t < takeOver.t)
        let rows = try FencedLog.writes(writes)
        let lastOfA = rows.lastIndex { $0.writer == "A" } ?? -1
        let firstOfB = rows.firstIndex { $0.writer == "B" } ?? Int.max
        #expect(lastOfA < firstOfB)
        a.terminate()
        b.terminate()
    }
}
