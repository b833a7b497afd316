import Foundation
import HawserTestSupport
import Testing

/// `scripts/node-ha.sh`, the local HA set-up in one command: it starts PostgreSQL, ZooKeeper, a
/// notary and a hot-warm pair; `status` shows one active and one standby; after `kill` of the
/// active the other takes over, and `start-node` brings it back (to lead again, as the preferred
/// master); `stop` leaves no process running.
@Suite(.enabled(if: PostgresServer.isAvailable && ZooKeeperEnsemble.isAvailable && ChildProcess.find("jq") != nil,
                "needs PostgreSQL 15 and root, the Debian zookeeper package, a JDK and jq"))
struct NodeHAScriptTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/node-ha.sh")
        .standardized.path

    @Test(.timeLimit(.minutes(6))) func startStatusKillAndStop() async throws {
        let scratch = try TemporaryDirectory()
        let dir = scratch.path + "/ha"
        let started = try await script(["start", dir, "hot-warm"], scratch.path)
        do {
            #expect(started.status == 0, "\(started.output)")
            for line in ["node A:", "node B:", "PostgreSQL:   postgres://hawser@127.0.0.1:", "ZooKeeper:", "notary:", "RPC login:"] {
                #expect(started.output.contains(line), "\(started.output)")
            }
            let roles = try await awaitRoles(dir, scratch.path, ["A": "active", "B": "standby"])
            #expect(roles.contains(#"{"status":"ready"}"#) && roles.contains(#"{"status":"standby"}"#), "\(roles)")
            let killed = try await script(["kill", dir, "A"], scratch.path)
            #expect(killed.status == 0, "\(killed.output)")
            // `kill` returns once A is gone, so A can be started again at once (start-node found
            // the killed process, not yet reaped, still running: found from outside).
            let again = try await script(["start-node", dir, "A"], scratch.path)
            #expect(again.status == 0, "\(again.output)")
            // Back as standby, A, the preferred master, takes over again after the 2 s hold-down.
            try await awaitRoles(dir, scratch.path, ["A": "active", "B": "standby"])
        } catch {
            _ = try? await script(["stop", dir], scratch.path)
            throw error
        }
        try await stopExpectingNoneLeft(dir, scratch.path, processes: 7, "nodes A and B, the notary, three ZooKeeper servers and PostgreSQL")
    }

    /// `start DIR hot-hot`: three workers, each leading its share of the 16 partitions; after
    /// `kill` of one the other two lead them all; `stop` leaves no process running.
    @Test(.timeLimit(.minutes(6))) func hotHotWorkersShareThePartitionsAndTakeOverAKilledOnes() async throws {
        let scratch = try TemporaryDirectory()
        let dir = scratch.path + "/hh"
        let started = try await script(["start", dir, "hot-hot"], scratch.path)
        do {
            #expect(started.status == 0, "\(started.output)")
            for line in ["mode:         hot-hot", "node A:", "node B:", "node C:"] { #expect(started.output.contains(line), "\(started.output)") }
            try await awaitLeads(dir, scratch.path) { $0.values.sorted() == [5, 5, 6] }
            #expect(try await script(["kill", dir, "B"], scratch.path).status == 0)
            try await awaitLeads(dir, scratch.path) { $0["B"] == nil && $0.values.reduce(0, +) == 16 }
        } catch {
            _ = try? await script(["stop", dir], scratch.path)
            throw error
        }
        try await stopExpectingNoneLeft(dir, scratch.path, processes: 8,
                                        "workers A, B (killed) and C, the notary, three ZooKeeper servers and PostgreSQL")
    }

    /// Stops the set-up in `dir`, which ran `count` processes (`what`, by their pid files), and
    /// expects none of them left.
    func stopExpectingNoneLeft(_ dir: String, _ scratch: String, processes count: Int, _ what: String,
                               sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let pids = try pidFiles(dir).compactMap { Int32(try String(contentsOfFile: $0, encoding: .utf8).split(separator: "\n")[0]) }
        #expect(pids.count == count, "\(what): \(pids)", sourceLocation: sourceLocation)
        let stopped = try await script(["stop", dir], scratch)
        #expect(stopped.status == 0, "\(stopped.output)", sourceLocation: sourceLocation)
        // A server may still be exiting (or not yet reaped) for a moment after it gave up its pid file.
        let deadline = ContinuousClock.now + .seconds(30)
        while pids.contains(where: { kill($0, 0) == 0 }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(pids.filter { kill($0, 0) == 0 }.isEmpty, "stop left processes running", sourceLocation: sourceLocation)
    }

    /// Polls `status` until the partitions each member leads (its `member ID: leads N partitions
    /// ... unfinished U oldest-wait-ms W` line) satisfy `done` (within a minute).
    func awaitLeads(_ dir: String, _ scratch: String, sourceLocation: SourceLocation = #_sourceLocation,
                    _ done: ([String: Int]) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        var last = ""
        while ContinuousClock.now < deadline {
            last = try await script(["status", dir], scratch).output
            var leads: [String: Int] = [:]
            for line in last.split(separator: "\n") where line.hasPrefix("member ") {
                // `member A: leads N partitions LIST unfinished U oldest-wait-ms W` (its lag; LIST empty when N is 0).
                let words = line.split(separator: " ", omittingEmptySubsequences: false)
                if words.count == 10, words[2] == "leads", words[6] == "unfinished", let count = Int(words[3]), Int(words[7]) != nil {
                    leads[String(words[1].dropLast())] = count
                }
            }
            if done(leads) { return }
            try await Task.sleep(for: .milliseconds(500))
        }
        Issue.record("status never showed the partitions led as expected: \(last)", sourceLocation: sourceLocation)
        throw CancellationError()
    }

    /// Runs the script with the `hawser` built beside the tests.
    func script(_ arguments: [String], _ scratch: String) async throws -> ChildProcess {
        try await ChildProcess.run("/bin/bash", [Self.script] + arguments, in: scratch, scratch: scratch, limit: .seconds(240),
                                   environment: ["HAWSER": HawserProcess.binary])
    }

    /// Polls `status` until its member lines give each id the role expected (within a minute);
    /// returns its output.
    @discardableResult
    func awaitRoles(_ dir: String, _ scratch: String, _ expected: [String: String],
                    sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(60)
        var last = ""
        while ContinuousClock.now < deadline {
            last = try await script(["status", dir], scratch).output
            let lines = last.split(separator: "\n")
            if expected.allSatisfy({ id, role in lines.contains { $0.hasPrefix("member \(id): \(role) ") } }) { return last }
            try await Task.sleep(for: .milliseconds(500))
        }
        Issue.record("status never showed \(expected): \(last)", sourceLocation: sourceLocation)
        throw CancellationError()
    }

    /// The pid files of a running set-up in `dir`.
    func pidFiles(_ dir: String) -> [String] {
        ["A.pid", "B.pid", "C.pid", "notary.pid", "zk/zk1/pid", "zk/zk2/pid", "zk/zk3/pid", "pg/data/postmaster.pid"]
            .map { dir + "/" + $0 }.filter { FileManager.default.fileExists(atPath: $0) }
    }
}
