import Coordination
import HawserTestSupport
import Testing

/// Fault scenarios that every election backend must pass, run by `LeaseFaultTests` and
/// `ZooKeeperFaultTests` with their own candidate arguments, administration and write log.
enum ElectionScenarios {
    /// kill -9 of the leader A: B takes over and its fenced writes are accepted. Returns A's and
    /// B's epochs and B, still running, for the backend's own checks.
    static func killedLeaderIsReplaced(arguments: [String]) async throws -> (first: UInt64, second: UInt64, b: CandidateProcess) {
        let a = try CandidateProcess(id: "A", arguments: arguments)
        let first = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments)
        try await b.waitUntilFollowing("A")
        a.kill()
        let second = try await b.waitUntilLeading()
        try await b.waitUntil("an accepted write") { $0.contains { $0.event == "write" && $0.accepted == true && $0.epoch == second } }
        return (first, second, b)
    }

    /// SIGSTOP of the leader A just after a write: B takes over with a higher epoch; after SIGCONT
    /// A's writes are refused with `stale_epoch` and it steps down (one of `steppedDown` events).
    /// A writes with `--unchecked-writes`, as if paused between asking whether it leads and its
    /// commit: the fence alone stands between it and the file.
    /// `holdsNoLock` tells whether the paused A holds no lock the others need: a process stopped
    /// inside a SQLite transaction blocks every other writer of the file until it runs again, and
    /// the scenario is a leader stopped between its transactions.
    static func pausedLeaderIsFenced(arguments: [String], takeOverTimeout: Duration = .seconds(20),
                                     steppedDown: Set<String> = ["follower"],
                                     holdsNoLock: () throws -> Bool = { true }) async throws {
        let a = try CandidateProcess(id: "A", arguments: arguments + ["--unchecked-writes"])
        let first = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments)
        try await b.waitUntilFollowing("A")
        // Pause just after a write committed: the leader is then between taking its epoch and
        // its next write, as a process in a long GC pause or a stalled VM would be.
        while true {
            let writesSoFar = a.events.filter { $0.event == "write" }.count
            try await a.waitUntil("another write") { $0.filter { $0.event == "write" }.count > writesSoFar }
            a.pause()
            // Checked once every thread has stopped: one still running could take a lock after.
            try await eventually("A stopped") { a.isStopped }
            if try holdsNoLock() { break }
            a.resume()
        }
        let second = try await b.waitUntilLeading(timeout: takeOverTimeout)
        #expect(second > first)
        try await b.waitUntil("an accepted write") { $0.contains { $0.event == "write" && $0.accepted == true && $0.epoch == second } }
        let paused = a.events.count
        a.resume()
        try await a.waitUntil("a refused write and stepping down") { events in
            let after = events.dropFirst(paused)
            return after.contains { $0.event == "write" && $0.accepted == false && $0.error == "stale_epoch" }
                && after.contains { steppedDown.contains($0.event) }
        }
        #expect(!a.events.dropFirst(paused).contains { $0.event == "write" && $0.accepted == true })
        #expect(b.leadingEpoch == second)
        a.terminate()
        b.terminate()
    }

    /// B leads; A stands and is made preferred (only a standing candidate can be) and takes over;
    /// A crashes and B leads again; A restarts and leads again no sooner than `holdDown` after it
    /// stood. Returns A's final epoch and both candidates, still running.
    static func preferredNodeReturns(arguments: [String], holdDown: Duration, admin: any ElectionAdministration)
        async throws -> (epoch: UInt64, a: CandidateProcess, b: CandidateProcess) {
        let b = try CandidateProcess(id: "B", arguments: arguments)
        _ = try await b.waitUntilLeading()
        await #expect(throws: CoordinationError.unknownCandidate("A")) { try await admin.setPreferred("A") }
        var a = try CandidateProcess(id: "A", arguments: arguments)
        try await a.waitUntilFollowing("B")
        try await admin.setPreferred("A")
        _ = try await a.waitUntilLeading()
        try await b.waitUntilFollowing()
        a.kill()
        _ = try await b.waitUntilLeading()
        a = try CandidateProcess(id: "A", arguments: arguments)
        try await a.waitUntil("standing") { $0.contains { $0.event == "follower" } }
        let standing = a.events.first { $0.event == "follower" }!.t
        let epoch = try await a.waitUntilLeading()
        let leading = a.events.last { $0.event == "leader" }!.t
        // B first saw A standing at A's first round (before A's follower event): allow one round.
        #expect(Duration.nanoseconds(leading - standing) >= holdDown - .milliseconds(250))
        return (epoch, a, b)
    }

    /// A switchover from A to B: A steps down before B leads with a higher epoch, and in the store
    /// every write of A committed before any write of B. Returns both epochs.
    @discardableResult
    static func switchoverNeverOverlaps(arguments: [String], admin: any ElectionAdministration, writes: String) async throws
        -> (first: UInt64, second: UInt64) {
        let a = try CandidateProcess(id: "A", arguments: arguments)
        let first = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments)
        try await b.waitUntilFollowing("A")
        try await a.waitUntil("a few writes") { $0.filter { $0.event == "write" }.count >= 5 }
        try await admin.switchover(to: "B")
        let second = try await b.waitUntilLeading()
        #expect(second > first)
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
        return (first, second)
    }
}
