import Foundation
import HawserTestSupport
import Testing

/// A lease leader stopped (SIGSTOP) inside a round's transaction, holding the lease row's lock:
/// real `hawser election run` processes, the leader stopping itself at that point through the
/// test hook `HAWSER_TEST_PAUSE_IN_LEASE_ROUND` (docs/coordination.md), which no signal sent from
/// outside hits reliably.
enum LeasePauseScenarios {
    /// A leads and B follows; A stops inside its next renewal. `whilePaused` checks what B does
    /// meanwhile (each back end's own story). Then A is resumed: it steps down before anything
    /// else (no write first), never leads with its old epoch again, and a higher epoch leads.
    static func leaderStoppedInsideARound(arguments: [String], directory: String,
                                          whilePaused: (_ b: CandidateProcess) async throws -> Void) async throws {
        let trigger = directory + "/pause-now"
        let a = try CandidateProcess(id: "A", arguments: arguments, environment: ["HAWSER_TEST_PAUSE_IN_LEASE_ROUND": trigger])
        let first = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments)
        try await b.waitUntilFollowing("A")
        #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
        try await a.waitUntil("stopping inside a round") { $0.contains { $0.event == "test-pause" } }
        try await eventually("A stopped") { a.isStopped }
        let paused = a.events.count
        try await whilePaused(b)
        a.resume()
        let isRole = { (event: CandidateProcess.Event) in CandidateProcess.roleEvents.contains(event.event) }
        try await a.waitUntil("a role after resuming") { $0.dropFirst(paused).contains(where: isRole) }
        #expect(a.events.dropFirst(paused).first(where: isRole)?.event == "follower")
        // Nothing before it either: its leadership ran out while it was stopped, and a write it
        // made on waking was accepted (no successor had claimed yet; found from outside).
        let beforeStepDown = a.events.dropFirst(paused).prefix { !isRole($0) }
        #expect(!beforeStepDown.contains { $0.event == "write" }, "\(beforeStepDown)")
        try await eventually("a higher epoch leading") { [a, b].contains { ($0.leadingEpoch ?? 0) > first } }
        #expect(!a.events.dropFirst(paused).contains { $0.event == "leader" && $0.epoch == first })
        a.terminate()
        b.terminate()
    }
}
