import Coordination
import Foundation
import HawserTestSupport
import Logging
import Testing
import ZooKeeper
import ZooKeeperElection

/// The ZooKeeper election against an outsider and against itself, in-process on a real
/// 3-server ensemble: ACLs, tampering, duplicates, a deleted candidate node, operator mistakes.
@Suite(.serialized, .enabled(if: ZooKeeperEnsemble.isAvailable, "needs the Debian zookeeper package and a JDK"),
       .zooKeeperEnsemble, .timeLimit(.minutes(3)))
struct ZooKeeperElectionTests {
    let ensemble = ZooKeeperEnsemble.current!
    let name = "e-\(UUID().uuidString.prefix(8).lowercased())"
    static let credentials = ZooKeeperCredentialsFile.credentials

    func configuration(_ credentials: ZooKeeperCredentials = credentials) -> ZooKeeperElectionConfiguration {
        var configuration = ZooKeeperElectionConfiguration(connectString: ensemble.connectString, credentials: credentials)
        configuration.name = name
        configuration.checkInterval = .milliseconds(100)
        // The longest the ensemble grants (20 ticks of 200 ms): nothing here tests expiry, and a
        // loaded machine must not lose leaders by accident.
        configuration.sessionTimeout = .seconds(4)
        configuration.holdDown = .seconds(60)
        return configuration
    }

    func election(_ id: String, _ credentials: ZooKeeperCredentials = credentials) throws -> ZooKeeperElection {
        try ZooKeeperElection(candidate: Candidate(id: id), configuration: configuration(credentials))
    }

    /// A client of the ensemble, authenticated as `credentials` if given.
    func client(_ credentials: ZooKeeperCredentials? = nil) async throws -> ZooKeeperClient {
        var zk = ZooKeeperConfiguration(servers: ensemble.addresses)
        zk.sessionTimeout = .seconds(4)
        let client = try await ZooKeeperClient.connect(configuration: zk)
        if let credentials { try await client.addDigestAuth(user: credentials.user, password: credentials.password) }
        return client
    }

    var base: String { "/hawser/elections/\(name)" }

    /// The election's node and its ancestors, made by `client` with no ACL (anybody's), as an
    /// older version or an outsider before the first candidate would.
    func makeOpenElection(_ client: ZooKeeperClient) async {
        var path = ""
        for part in ["hawser", "elections", name] {
            path += "/\(part)"
            _ = try? await client.create(path)
        }
    }

    /// Runs the elections while `body` runs, then stops them. The first is leading before the
    /// others start.
    func running(_ elections: [ZooKeeperElection], _ body: () async throws -> Void) async throws {
        var tasks = [Task { try await elections[0].run() }]
        defer { tasks.forEach { $0.cancel() } }
        try await eventually("\(elections[0].candidate.id) leading") { elections[0].status.role.epoch != nil }
        tasks += elections.dropFirst().map { election in Task { try await election.run() } }
        try await body()
        for task in tasks { task.cancel(); _ = try? await task.value }
    }

    @Test func anOutsiderCanNeitherChangeNorDeleteNorFakeTheElectionsNodes() async throws {
        let a = try election("A")
        try await running([a]) {
            try await eventually("A leading") { a.status.role.epoch != nil }
            let insider = try await client(Self.credentials)
            let node = try #require(try await insider.getChildren("\(base)/candidates").children.first)
            let anonymous = try await client()
            let impostor = try await client(ZooKeeperCredentials(user: Self.credentials.user, password: "guess"))
            for outsider in [anonymous, impostor] {
                for path in [base, "\(base)/candidates", "\(base)/epoch", "\(base)/preferred", "\(base)/switchover", "\(base)/candidates/\(node)"] {
                    await #expect(throws: ZooKeeperError.noAuth) { try await outsider.setData(path, data: Array("forged".utf8)) }
                    await #expect(throws: ZooKeeperError.noAuth) { try await outsider.getData(path) }
                    #expect(try await insider.getACL(path).acl == Self.credentials.acl)
                }
                await #expect(throws: ZooKeeperError.noAuth) { try await outsider.delete("\(base)/candidates/\(node)") }
                await #expect(throws: ZooKeeperError.noAuth) { try await outsider.delete("\(base)/epoch") }
                await #expect(throws: ZooKeeperError.noAuth) {
                    try await outsider.create("\(base)/candidates/c-X-", mode: .ephemeralSequential)
                }
            }
            // Nothing an outsider tried took effect. (Whether A still leads is not the question: on a
            // loaded machine it may step down for want of a timely confirmation, and lead again.)
            for path in [base, "\(base)/candidates", "\(base)/epoch", "\(base)/preferred", "\(base)/switchover"] {
                #expect(try await insider.getData(path).data != Array("forged".utf8), "\(path)")
            }
            #expect(try await !insider.getChildren("\(base)/candidates").children.contains { $0.hasPrefix("c-X-") })
            for zk in [insider, anonymous, impostor] { await zk.close() }
        }
    }

    @Test func anElectionLeftOpenByAnOlderVersionIsProtectedWhenItStarts() async throws {
        let anonymous = try await client()
        await makeOpenElection(anonymous)
        try await anonymous.create("\(base)/epoch", data: Array(#"{"epoch":7,"leader":"X","node":"c-X-0000000001"}"#.utf8))
        let a = try election("A")
        try await running([a]) {
            try await eventually("A leading") { a.status.role.epoch != nil }
            await #expect(throws: ZooKeeperError.noAuth) { try await anonymous.setData("\(base)/epoch", data: []) }
        }
        await anonymous.close()
    }

    /// An outsider who made a new election's nodes before its first candidate could queue
    /// candidates there: one that stood first under a made-up id, so nobody led while its session
    /// lived, and one under A's id, so A gave up as a duplicate. The candidates remove them.
    @Test func candidatesAnOutsiderQueuedBeforeTheElectionExistedAreRemoved() async throws {
        let anonymous = try await client()
        await makeOpenElection(anonymous)
        for child in ["candidates", "epoch", "preferred", "switchover"] { try await anonymous.create("\(base)/\(child)") }
        try await anonymous.setData("\(base)/preferred", data: Array("X".utf8))
        for id in ["X", "A"] {
            let data = Array(try JSONEncoder().encode(try Candidate(id: id)))
            try await anonymous.create("\(base)/candidates/c-\(id)-", data: data, mode: .ephemeralSequential)
        }
        let a = try election("A")
        let b = try election("B")
        try await running([a, b]) {
            // `running` saw A lead while the outsider's session lives.
            let insider = try await client(Self.credentials)
            #expect(try await insider.getChildren("\(base)/candidates").children.allSatisfy { !$0.hasPrefix("c-X-") })
            #expect(try await insider.getData("\(base)/preferred").data.isEmpty)
            await #expect(throws: ZooKeeperError.noAuth) {
                try await anonymous.create("\(base)/candidates/c-X-", mode: .ephemeralSequential)
            }
            await insider.close()
        }
        await anonymous.close()
    }

    @Test func anElectionWhoseNodesBelongToOtherCredentialsRefusesToStart() async throws {
        let a = try election("A")
        try await running([a]) {
            try await eventually("A leading") { a.status.role.epoch != nil }
        }
        let other = try election("B", ZooKeeperCredentials(user: "someone-else", password: "x"))
        await #expect(throws: CoordinationError.self) { try await other.run() }
        let admin = try ZooKeeperElectionAdministration(configuration: configuration(ZooKeeperCredentials(user: "someone-else", password: "x")))
        do {
            _ = try await admin.snapshot()
            Issue.record("a snapshot with other credentials succeeded")
        } catch let error as CoordinationError {
            #expect(error.code == "coordination_not_authorized")
        }
    }

    @Test func aLeaderWhoseNodeIsDeletedStepsDownAndTheNextEpochIsHigherEvenIfTheRecordWasRewound() async throws {
        let a = try election("A"), b = try election("B")
        try await running([a, b]) {
            try await eventually("A leading") { a.status.role.epoch != nil }
            let first = try #require(a.status.role.epoch)
            try await eventually("B following A") { b.status.role == .follower && b.status.leader == "A" }
            // The black-box attack, by someone who has the credentials: rewind the epoch record,
            // then delete the leader's candidate node.
            let insider = try await client(Self.credentials)
            let nodes = try await insider.getChildren("\(base)/candidates").children
            let nodeOfA = try #require(nodes.first { $0.hasPrefix("c-A-") })
            try await insider.setData("\(base)/epoch", data: Array(#"{"epoch":0,"leader":"X","node":"c-X-0000000000"}"#.utf8))
            try await insider.delete("\(base)/candidates/\(nodeOfA)")
            try await eventually("B leading") { b.status.role.epoch != nil }
            let second = try #require(b.status.role.epoch)
            #expect(second > first)
            try await eventually("A stepping down") { a.status.role.epoch == nil }
            await insider.close()
        }
    }

    /// A leader that resigns deletes its node at once, not at its next check: A checks every 20 s
    /// (a session of 60 s), B leads within 10 s, which it can only through A's resignation.
    /// Failed before the round loop was woken for queued work.
    @Test func aResignationHandsOverAtOnce() async throws {
        var slow = configuration()
        slow.sessionTimeout = .seconds(60)
        slow.checkInterval = .seconds(20)
        let a = try ZooKeeperElection(candidate: Candidate(id: "A"), configuration: slow)
        let b = try election("B")
        try await running([a, b]) {
            try await eventually("B following A") { b.status.role == .follower && b.status.leader == "A" }
            await a.resign()
            try await eventually("B leading before A's next check", timeout: .seconds(10)) { b.status.role.epoch != nil }
        }
    }

    @Test func aSecondCandidateWithTheSameIdIsRefusedAndTheFirstKeepsLeading() async throws {
        let first = try election("A"), second = try election("A")
        try await running([first]) {
            try await eventually("A leading") { first.status.role.epoch != nil }
            let epoch = first.status.role.epoch
            let statuses = second.statuses()
            let seen = Task { await statuses.reduce(into: [ElectionStatus]()) { $0.append($1) } }
            await #expect(throws: CoordinationError.duplicateCandidate("A")) { try await second.run() }
            #expect(await !seen.value.contains { $0.role.epoch != nil })
            #expect(first.status.role.epoch == epoch)
            let children = try await ZooKeeperElectionAdministration(configuration: configuration()).snapshot().candidates
            #expect(children.map(\.id) == ["A"])
        }
    }

    /// A balancer reads every partition's election each pass. With a session of its own per call
    /// each read was a session created and closed, and the election's nodes made sure of: writes
    /// the ensemble logs, 32 sessions a second for 16 partitions. On the process's shared session
    /// (`ZooKeeperSharedSession`), passes after the first write nothing.
    @Test func administrationsOnASharedSessionWriteNothingOnceTheirNodesExist() async throws {
        let leader = try #require(ensemble.leader())
        let partitions = (0..<4).map { k in
            var partition = configuration()
            partition.name = "\(name).p\(k)"
            return partition
        }
        let session = ZooKeeperSharedSession()
        let shared = try partitions.map { try ZooKeeperElectionAdministration(configuration: $0, session: session) }
        for admin in shared { _ = try await admin.snapshot() }  // the session opened, the nodes made
        let before = try #require(ensemble.zxid(of: leader))
        for _ in 0..<5 { for admin in shared { _ = try await admin.snapshot() } }
        #expect(ensemble.zxid(of: leader) == before, "reads on the shared session wrote to the ensemble")
        await session.close()
        // The same reads each on a session of its own write (the measure can see writes).
        _ = try await ZooKeeperElectionAdministration(configuration: partitions[0]).snapshot()
        #expect(try #require(ensemble.zxid(of: leader)) > before)
    }

    /// A hot-hot process's partitions elect on one session (`ZooKeeperSharedSession`): with a
    /// session each, a process of 16 partitions held 18, and ZooKeeper's `maxClientCnxns` (60 a
    /// client address by default) refused a fourth such process on one machine.
    @Test func aProcesssPartitionElectionsStandOnOneSession() async throws {
        let session = ZooKeeperSharedSession()
        let elections = try (0..<6).map { k in
            try ZooKeeperElection(candidate: Candidate(id: "A"), configuration: partition(k), sharing: session)
        }
        let tasks = elections.map { election in Task { try await election.run() } }
        defer { tasks.forEach { $0.cancel() } }
        try await eventually("A leading every partition") { elections.allSatisfy { $0.status.role.epoch != nil } }
        let owners = try await candidateOwners(partitions: 0..<6)
        #expect(owners.count == 6 && Set(owners.map(\.owner)).count == 1, "\(owners)")
        for task in tasks { task.cancel(); _ = try? await task.value }
        await session.close()
        #expect(try await candidateOwners(partitions: 0..<6).isEmpty)
        // A closed session stays closed: a late user does not open another that nobody closes.
        let late = try ZooKeeperElectionAdministration(configuration: partition(0), session: session)
        await #expect(throws: ZooKeeperError.closed) { try await late.snapshot() }
    }

    /// An election that stops on a shared session deletes its own node: the session lives on
    /// (the process's other partitions use it), and without the deletion the next candidate would
    /// wait for it for ever. The other partitions keep their leader and epoch.
    @Test func anElectionStoppingOnASharedSessionLeavesItsPlaceAtOnceAndTheOthersKeepLeading() async throws {
        let sessionA = ZooKeeperSharedSession(), sessionB = ZooKeeperSharedSession()
        let a = try (0..<3).map { try ZooKeeperElection(candidate: Candidate(id: "A"), configuration: partition($0), sharing: sessionA) }
        let b = try (0..<3).map { try ZooKeeperElection(candidate: Candidate(id: "B"), configuration: partition($0), sharing: sessionB) }
        var tasksA = a.map { election in Task { try await election.run() } }
        defer { tasksA.forEach { $0.cancel() } }
        try await eventually("A leading every partition") { a.allSatisfy { $0.status.role.epoch != nil } }
        let tasksB = b.map { election in Task { try await election.run() } }
        defer { tasksB.forEach { $0.cancel() } }
        try await eventually("B following A everywhere") { b.allSatisfy { $0.status.role == .follower && $0.status.leader == "A" } }
        let epochs = a.map(\.status.role.epoch)

        tasksA[0].cancel()
        _ = try? await tasksA[0].value
        try await eventually("B leading partition 0", timeout: .seconds(20)) { b[0].status.role.epoch != nil }
        #expect(a[1].status.role.epoch == epochs[1] && a[2].status.role.epoch == epochs[2])
        #expect(b[1].status.role == .follower && b[2].status.role == .follower)
        tasksA.removeFirst()
        for task in tasksA + tasksB { task.cancel(); _ = try? await task.value }
        await sessionA.close()
        await sessionB.close()
    }

    /// Partition `k`'s election, as a hot-hot node names it (`<election>.p<k>`).
    func partition(_ k: Int) -> ZooKeeperElectionConfiguration {
        var partition = configuration()
        partition.name = "\(name).p\(k)"
        return partition
    }

    /// Every candidate node of `partitions` and the session that owns it.
    func candidateOwners(partitions: Range<Int>) async throws -> [(node: String, owner: Int64)] {
        let insider = try await client(Self.credentials)
        var owners: [(node: String, owner: Int64)] = []
        for k in partitions {
            let candidates = "\(base).p\(k)/candidates"
            for node in (try? await insider.getChildren(candidates).children) ?? [] {
                if let stat = try await insider.exists("\(candidates)/\(node)") { owners.append(("p\(k)/\(node)", stat.ephemeralOwner)) }
            }
        }
        await insider.close()
        return owners
    }

    @Test func preferringOrSwitchingToANonCandidateIsRefusedAndChangesNothing() async throws {
        let a = try election("A")
        try await running([a]) {
            try await eventually("A leading") { a.status.role.epoch != nil }
            let admin = try ZooKeeperElectionAdministration(configuration: configuration())
            await #expect(throws: CoordinationError.unknownCandidate("nobody")) { try await admin.setPreferred("nobody") }
            await #expect(throws: CoordinationError.unknownCandidate("nobody")) { try await admin.switchover(to: "nobody") }
            let snapshot = try await admin.snapshot()
            #expect(snapshot.preferred == nil && snapshot.switchoverTarget == nil && snapshot.leader == "A")
            try await admin.setPreferred("A")
            #expect(try await admin.snapshot().preferred == "A")
        }
    }
}
