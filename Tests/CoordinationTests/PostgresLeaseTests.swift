import Coordination
import Foundation
import HawserCore
import HawserTestSupport
import Logging
import Postgres
import PostgresNIO
import Synchronization
import Testing

/// The lease election and the fencing check on a real PostgreSQL 15.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"),
       PostgresTrait(), .timeLimit(.minutes(2)))
struct PostgresLeaseTests {
    let server = PostgresTrait.current!
    let election = "e-\(UUID().uuidString.prefix(8).lowercased())"
    var configuration: PostgresConnection.Configuration { try! PostgresURL.configuration(server.url) }

    @Test func urlsAreParsedAndBadOnesRefused() throws {
        let parsed = try PostgresURL.configuration("postgres://u:p@db.example:5433/ledger")
        #expect(parsed.username == "u" && parsed.password == "p" && parsed.database == "ledger")
        for bad in ["http://u@h/db", "postgres://h/db", "postgres://u@/db", "nonsense",
                    "postgres://u@h:99999/db", "postgres://u@h:0/db", "postgres://u@h:5432", "postgres://u@h:5432/", "postgres://u@h/db/x",
                    // Options were dropped without a word: `sslmode=verify-full` connected in
                    // plain text (found from outside).
                    "postgres://u@h/db?sslmode=require", "postgresql://u@h/db?", "postgres://u@h/db#x"] {
            #expect(throws: PostgresURLError.self) { try PostgresURL.configuration(bad) }
        }
        let withPassword = try #require(#expect(throws: PostgresURLError.self) { try PostgresURL.configuration("postgres://u:hunter2@h:99999/db") }).description
        #expect(!withPassword.contains("hunter2") && withPassword.contains("postgres://u:***@h:99999/db"), "\(withPassword)")
    }

    /// A backend for the tests of the rules, whose transactions may take long on a loaded machine
    /// (the default bound of one second is for elections, which retry).
    var patientBackend: PostgresLeaseBackend { PostgresLeaseBackend(configuration: configuration, requestTimeout: .seconds(15)) }

    @Test func roundsFollowTheLeaseRulesByTheDatabaseClock() async throws {
        let backend = patientBackend
        try await backend.prepare()
        try await backend.prepare()  // idempotent
        let a = Candidate(id: "A", addresses: ["a:1"]), b = Candidate(id: "B")
        // Long leases wherever a step must not see one expire on a loaded machine; A's last
        // renewal is short so that it expires on its own.
        let first = try await backend.round(election: election, candidate: a, healthy: true, mayAcquire: true, leaseDuration: .seconds(60))
        #expect(first.holder == "A" && first.epoch == Epoch(1))
        let other = try await backend.round(election: election, candidate: b, healthy: true, mayAcquire: true, leaseDuration: .seconds(60))
        #expect(other.holder == "A" && other.standing == ["A", "B"])
        let renewed = try await backend.round(election: election, candidate: a, healthy: true, mayAcquire: true, leaseDuration: .milliseconds(200),
                                             leadingWith: Epoch(1))
        #expect(renewed.holder == "A" && renewed.epoch == Epoch(1))
        try await eventually("B acquiring", timeout: .seconds(30)) {
            try await backend.round(election: election, candidate: b, healthy: true, mayAcquire: true, leaseDuration: .seconds(60)).holder == "B"
        }
        await #expect(throws: CoordinationError.unknownCandidate("Z")) { try await backend.setPreferred(election: election, "Z") }
        // A stands again (its last round may be long past on a loaded machine), and B keeps the lease.
        #expect(try await backend.round(election: election, candidate: a, healthy: true, mayAcquire: true, leaseDuration: .seconds(60)).holder == "B")
        try await backend.setPreferred(election: election, "A")
        let snapshot = try await backend.snapshot(election: election, leaseDuration: .seconds(60))
        #expect(snapshot.leader == "B" && snapshot.epoch == Epoch(2) && snapshot.preferred == "A")
        await #expect(throws: CoordinationError.unknownCandidate("Z")) {
            try await backend.setTarget(election: election, "Z", leaseDuration: .seconds(60))
        }
        try await backend.withdraw(election: election, candidate: "A")
        #expect(try await backend.snapshot(election: election, leaseDuration: .seconds(60)).candidates.map(\.id) == ["B"])
        await backend.close()
    }

    /// The partitions of a process share one backend (`SharedLeaseBackend`), so a round may wait
    /// for the connection behind another's. A round whose deadline passes while it waits never
    /// runs later (its task is cancelled, and so is the transaction it would start): it would act
    /// for an election that has moved on.
    @Test(arguments: [false, true]) func aRoundThatGaveUpWaitingForTheConnectionNeverRuns(shared: Bool) async throws {
        let backend: any LeaseBackend = shared ? SharedLeaseBackend(patientBackend) : patientBackend
        defer { if let shared = backend as? SharedLeaseBackend { Task { await shared.closeShared() } } }
        try await backend.prepare()
        let a = Candidate(id: "A")
        _ = try await backend.round(election: election, candidate: a, healthy: true, mayAcquire: true, leaseDuration: .seconds(60))
        // Another session holds the election's row, so the first round waits on it, holding the connection.
        let holder = Task { try await server.sql("BEGIN; SELECT 1 FROM hawser_lease WHERE election = '\(election)' FOR UPDATE; SELECT pg_sleep(2); COMMIT") }
        try await eventually("the row held") { try await sessions(where: "query LIKE '%pg_sleep%'") == 1 }
        let first = Task { try await backend.transaction(election: election) { _ in (LeaseWrites.none, 1) } }
        try await eventually("the first round waiting for the row") { try await sessions(where: "wait_event_type = 'Lock'") == 1 }
        let ran = Atomic<Bool>(false)
        let gaveUp = try await within(.milliseconds(200)) {
            try await backend.transaction(election: election) { _ in
                ran.store(true, ordering: .relaxed)
                return (LeaseWrites.none, 2)
            }
        }
        #expect(gaveUp == nil)
        #expect(try await first.value == 1)
        try await holder.value
        // Served in order: had the second stayed in the queue, it would have run before this one.
        #expect(try await backend.transaction(election: election) { _ in (LeaseWrites.none, 3) } == 3)
        let ranLater = ran.load(ordering: .relaxed)
        #expect(!ranLater, "the round that gave up ran later")
        await backend.close()
    }

    /// Several elections' rounds in one transaction (a process's partitions, group-committed by
    /// `SharedLeaseBackend`): each reads its own election's state at the same database time,
    /// a missing lease row is created, and a round that fails to decide writes nothing while the
    /// others commit.
    @Test func roundsOfSeveralElectionsShareATransactionAndFailAlone() async throws {
        struct Refused: Error {}
        let backend = patientBackend
        try await backend.prepare()
        let (e1, e2, e3) = (election + "-1", election + "-2", election + "-3")
        _ = try await backend.round(election: e1, candidate: Candidate(id: "A"), healthy: true, mayAcquire: true, leaseDuration: .seconds(60))
        let configuration = PostgresLeaseBackend.configuration(e1, .seconds(60))
        let request = RoundRequest(healthy: true, mayAcquire: true, standingAside: false, highestSeen: .zero, leadingWith: nil)
        let seen = Mutex<[String: LeaseState]>([:])
        let round = { (election: String, id: String) in
            LeaseRound(election: election) { state in
                seen.withLock { $0[election] = state }
                let outcome = LeaseRules.round(state, candidate: Candidate(id: id), instance: "test-\(id)", request: request, configuration: configuration)
                return LeaseWrites(lease: outcome.lease, candidate: outcome.candidate)
            }
        }
        let results = await backend.transaction(rounds: [
            round(e3, "C"), LeaseRound(election: e2) { _ in throw Refused() }, round(e1, "B"),
        ])
        #expect(results.map { (try? $0.get()) != nil } == [true, false, true])
        let states = seen.withLock { $0 }
        #expect(states[e1]?.lease.holder == "A" && states[e1]?.candidates.map(\.candidate.id) == ["A"])
        #expect(states[e3]?.lease.holder == nil && states[e3]?.candidates == [])
        #expect(states[e1]?.nowMs == states[e3]?.nowMs, "one transaction, one database time")
        let one = try await backend.snapshot(election: e1, leaseDuration: .seconds(60))
        #expect(one.leader == "A" && one.candidates.map(\.id).sorted() == ["A", "B"])
        let three = try await backend.snapshot(election: e3, leaseDuration: .seconds(60))
        #expect(three.leader == "C" && three.epoch == Epoch(1) && three.candidates.map(\.id) == ["C"])
        let two = try await backend.snapshot(election: e2, leaseDuration: .seconds(60))
        #expect(two.leader == nil && two.candidates.isEmpty)
        await backend.close()
    }

    /// Sessions on the test's server that match `condition` (`pg_stat_activity`).
    func sessions(where condition: String) async throws -> Int {
        Int(try await server.rows("SELECT count(*) FROM pg_stat_activity WHERE \(condition) AND pid <> pg_backend_pid()").first?.first ?? "") ?? -1
    }

    @Test func theFencingCheckRefusesAStaleEpochAndItsWholeTransaction() async throws {
        let backend = patientBackend
        try await backend.prepare()
        let table = "t_\(election.replacingOccurrences(of: "-", with: "_"))"
        let resource = "ledger-\(election)"
        try await backend.fencedWrite(resource: "setup-\(election)", epoch: Epoch(1)) { connection, logger in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE TABLE \(table) (v int)"), logger: logger)
        }
        for value in [3, 5] {
            try await backend.fencedWrite(resource: resource, epoch: Epoch(UInt64(value))) { connection, logger in
                try await connection.query(PostgresQuery(unsafeSQL: "INSERT INTO \(table) VALUES (\(value))"), logger: logger)
            }
        }
        await #expect(throws: CoordinationError.staleEpoch(resource: resource, presented: Epoch(4), current: Epoch(5))) {
            try await backend.fencedWrite(resource: resource, epoch: Epoch(4)) { connection, logger in
                try await connection.query(PostgresQuery(unsafeSQL: "INSERT INTO \(table) VALUES (4)"), logger: logger)
            }
        }
        let values = try await backend.fencedWrite(resource: resource, epoch: Epoch(5)) { connection, logger in
            var values: [Int32] = []
            for try await value in try await connection.query(PostgresQuery(unsafeSQL: "SELECT v FROM \(table) ORDER BY v"), logger: logger).decode(Int32.self) {
                values.append(value)
            }
            return values
        }
        #expect(values == [3, 5])
        await backend.close()
    }

    @Test func twoElectionsHandOverWithoutOverlap() async throws {
        var lease = LeaseConfiguration()
        lease.name = election
        // Generous for a loaded machine: a target that misses its heartbeats for a whole lease
        // stops counting as standing, and the switchover to it is (rightly) abandoned.
        lease.leaseDuration = .seconds(6)
        lease.renewInterval = .milliseconds(300)
        lease.requestTimeout = .seconds(3)
        let a = try LeaseElection(candidate: Candidate(id: "A"), backend: PostgresLeaseBackend(configuration: configuration, requestTimeout: lease.requestTimeout), configuration: lease)
        let b = try LeaseElection(candidate: Candidate(id: "B"), backend: PostgresLeaseBackend(configuration: configuration, requestTimeout: lease.requestTimeout), configuration: lease)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await a.run() }
            try await eventually("A leading") { a.status.role.epoch != nil }
            group.addTask { try await b.run() }
            try await eventually("B following A") { b.status.role == .follower && b.status.leader == "A" }
            let admin = LeaseAdministration(backend: PostgresLeaseBackend(configuration: configuration, requestTimeout: lease.requestTimeout), configuration: lease)
            try await admin.switchover(to: "B")
            await admin.close()
            try await eventually("B leading") { b.status.role.epoch != nil }
            #expect(a.status.role.epoch == nil)
            // Epoch 2 when nothing else happened; a lease lapsed on a loaded machine adds terms.
            #expect((b.status.role.epoch ?? .zero) >= Epoch(2))
            group.cancelAll()
        }
    }

    @Test func killingTheLeaderProcessHandsLeadershipOn() async throws {
        let directory = try TemporaryDirectory()
        let writes = directory.path + "/writes.sqlite"
        let arguments = ["--postgres", server.url, "--election", election, "--lease-ms", "1000", "--renew-ms", "200",
                         "--request-timeout-ms", "500", "--fenced-writes", writes, "--write-interval-ms", "50"]
        let a = try CandidateProcess(id: "A", arguments: arguments)
        let first = try await a.waitUntilLeading()
        let b = try CandidateProcess(id: "B", arguments: arguments)
        try await b.waitUntilFollowing("A")
        a.kill()
        let second = try await b.waitUntilLeading()
        #expect(second > first)
        try await b.waitUntil("an accepted write") { $0.contains { $0.event == "write" && $0.accepted == true } }
        b.terminate()
        #expect(FencedLog.problems(try FencedLog.writes(writes)) == [])
    }

    /// The leader stopped inside a round, holding the lease row's lock: the server ends that
    /// transaction once it has been idle for `requestTimeout`, so B takes over while A is still
    /// stopped. Failed before the election's sessions had that bound: B never led.
    @Test func aLeaderStoppedInsideARoundIsReplacedWhileStopped() async throws {
        let directory = try TemporaryDirectory()
        let arguments = ["--postgres", server.url, "--election", election, "--lease-ms", "3000", "--renew-ms", "300",
                         "--request-timeout-ms", "1500", "--hold-down-ms", "60000", "--fenced-writes", directory.path + "/writes.sqlite"]
        try await LeasePauseScenarios.leaderStoppedInsideARound(arguments: arguments, directory: directory.path) { b in
            _ = try await b.waitUntilLeading(timeout: .seconds(45))
        }
    }

    func lease(standAside: Duration = .seconds(30)) -> LeaseConfiguration {
        var lease = LeaseConfiguration()
        lease.name = election
        lease.leaseDuration = .seconds(9)
        lease.renewInterval = .milliseconds(300)
        lease.requestTimeout = .seconds(5)
        lease.standAside = standAside
        lease.holdDown = .seconds(60)
        return lease
    }

    @Test func aSecondProcessWithTheSameIdIsRefused() async throws {
        try await LeaseScenarios.duplicateIsRefused(configuration: lease()) { PostgresLeaseBackend(configuration: configuration, requestTimeout: .seconds(5)) }
    }

    @Test func aSwitchoverBackToACandidateStandingAsideIsImmediate() async throws {
        try await LeaseScenarios.switchoverBackIsImmediate(configuration: lease()) { PostgresLeaseBackend(configuration: configuration, requestTimeout: .seconds(5)) }
    }

    @Test func aResignationReleasesTheLeaseAtOnce() async throws {
        try await LeaseScenarios.aResignationReleasesTheLeaseAtOnce { PostgresLeaseBackend(configuration: configuration, requestTimeout: .seconds(5)) }
    }

    @Test func aSwitchoverToADeadCandidateLeavesNoLongGap() async throws {
        try await LeaseScenarios.switchoverToADeadCandidate(configuration: lease()) { PostgresLeaseBackend(configuration: configuration, requestTimeout: .seconds(5)) }
    }

    @Test func errorsSayWhatIsWrongAndNeverThePassword() async throws {
        let closed = try FreePorts.take(1)[0]
        let cases: [(url: String, code: String, says: String)] = [
            ("postgres://hawser:hunter2-secret@127.0.0.1:\(closed)/postgres", "coordination_unavailable", "cannot connect to PostgreSQL at 127.0.0.1:\(closed)"),
            ("postgres://nobody:hunter2-secret@127.0.0.1:\(server.port)/postgres", "coordination_not_authorized", #"role "nobody" does not exist"#),
            ("postgres://hawser:hunter2-secret@127.0.0.1:\(server.port)/nope", "coordination_unavailable", #"database "nope" does not exist"#),
        ]
        for (url, code, says) in cases {
            let backend = PostgresLeaseBackend(configuration: try PostgresURL.configuration(url))
            do {
                try await backend.prepare()
                Issue.record("\(url) worked")
            } catch let error as CoordinationError {
                #expect(error.code == code, "\(url)")
                #expect(error.description.contains(says), "\(error)")
                #expect(!error.description.contains("hunter2"))
            }
            await backend.close()
        }
    }

    /// A login the server refuses ends the election, as ZooKeeper credentials that do not fit
    /// do: a process so configured fails at start-up. It stood by for ever, with one warning in
    /// its log (found by an operator following the docs).
    @Test func aRefusedLoginEndsTheElection() async throws {
        let url = "postgres://nobody:hunter2-secret@127.0.0.1:\(server.port)/postgres"
        let election = try LeaseElection(candidate: Candidate(id: "A"), backend: PostgresLeaseBackend(configuration: try PostgresURL.configuration(url)),
                                         configuration: lease())
        do {
            try await withTimeout(.seconds(30)) { try await election.run() }
            Issue.record("the election ran without a login")
        } catch let error as CoordinationError {
            #expect(error.code == "coordination_not_authorized", "\(error)")
        }
    }

    @Test func anUnreachableDatabaseIsLoggedOncePerChangeNotEveryRound() async throws {
        let closed = try FreePorts.take(1)[0]
        let url = "postgres://hawser:hunter2-secret@127.0.0.1:\(closed)/postgres"
        let lines = LogLines()
        let logger = Logger(label: "test", capturingInto: lines)
        let counting = CountingBackend(PostgresLeaseBackend(configuration: try PostgresURL.configuration(url)))
        var fast = lease()
        fast.renewInterval = .milliseconds(50)
        fast.requestTimeout = .milliseconds(500)
        let election = try LeaseElection(candidate: Candidate(id: "A"), backend: counting, configuration: fast, logger: logger)
        let task = Task { try await election.run() }
        try await eventually("five attempts") { counting.attempts >= 5 }
        task.cancel()
        _ = try? await task.value
        let warnings = lines.messages.filter { $0.level >= .warning }
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?.text.contains("cannot connect to PostgreSQL at 127.0.0.1:\(closed)") == true)
        #expect(!lines.messages.contains { $0.text.contains("hunter2") })
    }
}
