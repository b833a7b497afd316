import Coordination
import Foundation
import HawserTestSupport
import Synchronization
import Testing
import ZooKeeper
import ZooKeeperElection

/// The ZooKeeper election across the expiry of its session, in-process on a real 3-server
/// ensemble: whatever the round loop was doing when the session expired, the candidate stands
/// again on a new session.
@Suite(.serialized, .enabled(if: ZooKeeperEnsemble.isAvailable, "needs the Debian zookeeper package and a JDK"),
       .zooKeeperEnsemble, .timeLimit(.minutes(3)))
struct ZooKeeperSessionExpiryTests {
    let ensemble = ZooKeeperEnsemble.current!
    let name = "e-\(UUID().uuidString.prefix(8).lowercased())"

    /// Defect A of the node fault run: a round sent while the session was suspended failed with
    /// `sessionExpired`; the election never told its core, which then waited for that round for
    /// ever, so the candidate opened a new session and never stood again.
    @Test func aRoundCaughtByTheSessionsExpiryDoesNotStopTheCandidateStanding() async throws {
        // The candidate talks to one server only, so that pausing it cuts the candidate off while
        // the other two expire its session.
        let ensembleLeader = try #require(ensemble.leader())
        let server = ensemble.servers.first { $0.id != ensembleLeader }!
        var configuration = ZooKeeperElectionConfiguration(connectString: server.address.description,
                                                           credentials: ZooKeeperCredentialsFile.credentials)
        configuration.name = name
        configuration.checkInterval = .milliseconds(100)
        configuration.sessionTimeout = .seconds(2)
        // The round must end with its session, not with its own deadline.
        configuration.requestTimeout = .seconds(60)
        var adminConfiguration = ZooKeeperElectionConfiguration(connectString: ensemble.connectString,
                                                                credentials: ZooKeeperCredentialsFile.credentials)
        adminConfiguration.name = name
        let admin = try ZooKeeperElectionAdministration(configuration: adminConfiguration)
        let gate = HealthGate()
        let a = try ZooKeeperElection(candidate: Candidate(id: "A"), configuration: configuration,
                                      health: HealthChecks([ClosureHealthCheck(name: "gate") { await gate.pass(); return nil }]))
        let task = Task { try await a.run() }
        defer {
            gate.open()
            ensemble.resume(server.id)
            task.cancel()
        }
        try await eventually("A leading", timeout: .seconds(120)) { a.status.role.epoch != nil }  // a new ensemble under load
        let first = try #require(a.status.role.epoch)

        // Holds the round loop between rounds, cuts it off until the ensemble expired its session,
        // then lets it send its next round while the client still waits for its server.
        gate.close()
        try await eventually("A's round loop held in its health check") { gate.entered }
        ensemble.pause(server.id)
        try await eventually("A's session expired", timeout: .seconds(30)) { try await admin.snapshot().candidates.isEmpty }
        gate.open()
        ensemble.resume(server.id)

        try await eventually("A leading on a new session", timeout: .seconds(30)) { (a.status.role.epoch ?? first) > first }
        #expect(try await admin.snapshot().candidates.map(\.id) == ["A"])
        task.cancel()
        _ = try? await task.value
    }
}

extension ZooKeeperSessionExpiryTests {
    /// The expiry of a session a process's partitions share ends every election on it; each
    /// stands again, all on one new session, with a higher epoch.
    @Test func theExpiryOfASharedSessionEndsEveryElectionOnItAndEachStandsAgainOnTheNext() async throws {
        let ensembleLeader = try #require(ensemble.leader())
        let server = ensemble.servers.first { $0.id != ensembleLeader }!
        func partition(_ k: Int, _ connectString: String) -> ZooKeeperElectionConfiguration {
            var configuration = ZooKeeperElectionConfiguration(connectString: connectString, credentials: ZooKeeperCredentialsFile.credentials)
            configuration.name = "\(name).p\(k)"
            configuration.checkInterval = .milliseconds(100)
            configuration.sessionTimeout = .seconds(2)
            return configuration
        }
        let session = ZooKeeperSharedSession()
        let elections = try (0..<3).map { k in
            try ZooKeeperElection(candidate: Candidate(id: "A"), configuration: partition(k, server.address.description), sharing: session)
        }
        let admins = try (0..<3).map { try ZooKeeperElectionAdministration(configuration: partition($0, ensemble.connectString)) }
        let tasks = elections.map { election in Task { try await election.run() } }
        defer {
            ensemble.resume(server.id)
            tasks.forEach { $0.cancel() }
        }
        try await eventually("A leading every partition", timeout: .seconds(120)) { elections.allSatisfy { $0.status.role.epoch != nil } }
        let first = elections.map { $0.status.role.epoch! }

        ensemble.pause(server.id)
        try await eventually("the session expired", timeout: .seconds(30)) {
            for admin in admins where try await !admin.snapshot().candidates.isEmpty { return false }
            return true
        }
        #expect(elections.allSatisfy { $0.status.role.epoch == nil })
        ensemble.resume(server.id)

        try await eventually("A leading every partition on a new session", timeout: .seconds(30)) {
            zip(elections, first).allSatisfy { election, first in (election.status.role.epoch ?? first) > first }
        }
        let insider = try await ZooKeeperClient.connect(configuration: ZooKeeperConfiguration(servers: ensemble.addresses))
        try await insider.addDigestAuth(user: ZooKeeperCredentialsFile.credentials.user, password: ZooKeeperCredentialsFile.credentials.password)
        var owners: [Int64] = []
        for k in 0..<3 {
            let candidates = "/hawser/elections/\(name).p\(k)/candidates"
            for node in try await insider.getChildren(candidates).children {
                owners += [try await insider.exists("\(candidates)/\(node)")?.ephemeralOwner].compactMap { $0 }
            }
        }
        await insider.close()
        #expect(owners.count == 3 && Set(owners).count == 1, "\(owners)")
        for task in tasks { task.cancel(); _ = try? await task.value }
        await session.close()
    }
}

/// A health check the test can hold: while closed, `pass()` waits until `open()`.
private final class HealthGate: Sendable {
    private let state = Mutex<(closed: Bool, entered: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, false, []))

    var entered: Bool { state.withLock { $0.entered } }

    func close() { state.withLock { $0.closed = true; $0.entered = false } }

    func open() {
        let waiters = state.withLock { state in
            defer { state.waiters = [] }
            state.closed = false
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func pass() async {
        await withCheckedContinuation { continuation in
            let wait = state.withLock { state in
                guard state.closed else { return false }
                state.entered = true
                state.waiters.append(continuation)
                return true
            }
            if !wait { continuation.resume() }
        }
    }
}
