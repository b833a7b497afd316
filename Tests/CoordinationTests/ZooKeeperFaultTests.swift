import Coordination
import Foundation
import HawserTestSupport
import Testing
import ZooKeeperElection

/// The fault tests of the ZooKeeper election: real `hawser election run` processes on a real
/// 3-server ensemble, each making fenced writes to a SQLite file while it leads. Every test
/// checks the committed writes: epochs never go down and one epoch has one writer.
@Suite(.serialized, .enabled(if: ZooKeeperEnsemble.isAvailable, "needs the Debian zookeeper package and a JDK"),
       .zooKeeperEnsemble, .timeLimit(.minutes(3)))
struct ZooKeeperFaultTests {
    let ensemble = ZooKeeperEnsemble.current!
    let election = "e-\(UUID().uuidString.prefix(8).lowercased())"
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hawser-election-\(UUID().uuidString)").path
    static let sessionTimeout = Duration.seconds(2)

    var writes: String { directory + "/writes.sqlite" }

    func arguments(holdDownMs: Int = 60_000, writeIntervalMs: Int = 100, extra: [String] = []) -> [String] {
        ["--zookeeper", ensemble.connectString, "--zookeeper-credentials", ZooKeeperCredentialsFile.path,
         "--election", election, "--session-timeout-ms", "2000",
         "--check-interval-ms", "100", "--hold-down-ms", "\(holdDownMs)", "--fenced-writes", writes,
         "--write-interval-ms", "\(writeIntervalMs)"] + extra
    }

    func admin() throws -> ZooKeeperElectionAdministration {
        var configuration = ZooKeeperElectionConfiguration(connectString: ensemble.connectString, credentials: ZooKeeperCredentialsFile.credentials)
        configuration.name = election
        return try ZooKeeperElectionAdministration(configuration: configuration)
    }

    func checkWrites() throws {
        #expect(FencedLog.problems(try FencedLog.writes(writes)) == [])
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test func killingTheLeaderHandsLeadershipToTheOther() async throws {
        let (first, second, b) = try await ElectionScenarios.killedLeaderIsReplaced(arguments: arguments())
        #expect(second > first)
        let snapshot = try await admin().snapshot()
        #expect(snapshot.leader == "B" && snapshot.epoch == Epoch(second) && snapshot.candidates.map(\.id) == ["B"])
        b.terminate()
        try checkWrites()
    }

    @Test func aPausedLeaderIsReplacedAndItsWritesAreRefusedWhenItResumes() async throws {
        try await ElectionScenarios.pausedLeaderIsFenced(arguments: arguments(writeIntervalMs: 400), takeOverTimeout: .seconds(30),
                                                         steppedDown: ["follower", "not-standing"])
        try checkWrites()
    }

    @Test func aLeaderCutOffFromZooKeeperStopsActingBeforeAnotherIsElected() async throws {
        // A talks to one server only; that server then goes silent (SIGSTOP), as in a partition.
        let ensembleLeader = try #require(ensemble.leader())
        let server = ensemble.servers.first { $0.id != ensembleLeader }!
        var only = arguments()
        only[1] = server.address.description  // the value of --zookeeper
        let a = try CandidateProcess(id: "A", arguments: only)
        let first = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments())
        try await b.waitUntilFollowing("A")
        ensemble.pause(server.id)
        defer { ensemble.resume(server.id) }
        let second = try await b.waitUntilLeading(timeout: .seconds(30))
        #expect(second > first)
        // A heard nothing for 2/3 of the session timeout and stepped down; the ensemble expired its
        // session only after the whole timeout, and only then could B be elected.
        let led = a.events.first { $0.event == "leader" }!.t
        let stepDown = try #require(a.events.first { $0.event == "follower" && $0.t > led })
        let elected = b.events.first { $0.event == "leader" }!
        #expect(stepDown.t < elected.t)
        #expect(a.leadingEpoch == nil)
        ensemble.resume(server.id)
        try await b.waitUntil("an accepted write") { $0.contains { $0.event == "write" && $0.accepted == true && $0.epoch == second } }
        a.terminate()
        b.terminate()
        try checkWrites()
    }

    @Test func losingAnyZooKeeperServerDoesNotChangeOurLeader() async throws {
        let a = try CandidateProcess(id: "A", arguments: arguments())
        let epoch = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments())
        try await b.waitUntilFollowing("A")
        let ensembleLeader = try #require(ensemble.leader())
        let follower = ensemble.servers.map(\.id).first { $0 != ensembleLeader }!
        for victim in [ensembleLeader, follower] {
            ensemble.kill(victim)
            try await eventually("a serving quorum", timeout: .seconds(30)) {
                ensemble.servers.map(\.id).contains { $0 != victim && ["leader", "standalone"].contains(ensemble.mode(of: $0)) }
            }
            try await a.waitUntil("leading again", timeout: .seconds(20)) { _ in a.leadingEpoch != nil }
            // A session outlives its connection for the session timeout: watch past it.
            try await Task.sleep(for: Self.sessionTimeout * 2)
            try ensemble.startServer(victim)
            try await ensemble.waitUntilServing([victim])
        }
        // The same leader: B never led. A's epoch may be newer: losing the server it was
        // connected to suspends its session, which ends its term, and a term that ended is not
        // resumed under its epoch (`RoundRequest.leadingWith`).
        #expect(try #require(a.leadingEpoch) >= epoch)
        #expect(!b.events.contains { $0.event == "leader" })
        a.terminate()
        b.terminate()
        try checkWrites()
    }

    @Test func thePreferredNodeRegainsLeadershipAfterTheHoldDown() async throws {
        let (epoch, a, b) = try await ElectionScenarios.preferredNodeReturns(arguments: arguments(holdDownMs: 1500),
                                                                             holdDown: .milliseconds(1500), admin: admin())
        #expect(b.leadingEpoch == nil)
        #expect(try await admin().snapshot().leader == "A" && epoch > 2)
        a.terminate()
        b.terminate()
        try checkWrites()
    }

    @Test func aSwitchoverNeverLeavesTwoLeadersWithAValidEpoch() async throws {
        try await ElectionScenarios.switchoverNeverOverlaps(arguments: arguments(writeIntervalMs: 20), admin: admin(), writes: writes)
        #expect(try await admin().snapshot().switchoverTarget == nil)
        try checkWrites()
    }

    @Test func anUnhealthyLeaderStepsAsideAndReturnsWhenHealthy() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let flag = directory + "/drain"
        let a = try CandidateProcess(id: "A", arguments: arguments(extra: ["--unhealthy-if-exists", flag]))
        _ = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments())
        try await b.waitUntilFollowing("A")
        _ = FileManager.default.createFile(atPath: flag, contents: nil)
        _ = try await b.waitUntilLeading()
        try await a.waitUntil("not standing") { _ in a.lastRole?.event == "not-standing" }
        #expect(try await admin().snapshot().candidates.map(\.id) == ["B"])
        try FileManager.default.removeItem(atPath: flag)
        try await a.waitUntilFollowing("B")
        a.terminate()
        b.terminate()
        try checkWrites()
    }
}

/// The digest credentials the ZooKeeper tests' elections use, in a file for `--zookeeper-credentials`.
enum ZooKeeperCredentialsFile {
    static let credentials = ZooKeeperCredentials(user: "hawser-test", password: "pw-\(UUID().uuidString.prefix(8))")
    static let path: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hawser-zk-credentials-\(getpid())").path
        _ = FileManager.default.createFile(atPath: path, contents: Data("\(credentials.user):\(credentials.password)\n".utf8))
        return path
    }()
}
