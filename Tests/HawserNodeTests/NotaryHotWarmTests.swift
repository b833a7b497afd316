import AsyncHTTPClient
import Foundation
import HawserClient
import HawserCore
import HawserNode
import HawserTestSupport
import HawserWire
import NIOCore
import Synchronization
import Testing

/// Two `hawser notary run` processes hot-warm on one PostgreSQL database, elected through a
/// 3-server ZooKeeper ensemble (a process paused inside a SQLite or PostgreSQL lease transaction
/// would hold the lease's lock, and the other could take over only once it resumed): the
/// standby's answer, requests through a failing-over `NotaryClient` while the active is killed
/// (-9) and the next one paused past its session timeout and resumed. Every answer is verified by
/// the client; no state is ever answered `committed` for two transactions, and every committed
/// answer stays true on the active notary at the end.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root"),
       .enabled(if: ZooKeeperEnsemble.isAvailable, "needs the Debian zookeeper package and a JDK"),
       PostgresTrait(), .zooKeeperEnsemble, .timeLimit(.minutes(4)))
struct NotaryHotWarmTests {
    /// What the load heard: each transaction's refs and its verified answer.
    final class History: Sendable {
        let answers = Mutex<[(txId: SecureHash, inputs: [StateRef], outcome: NotarisationOutcome)]>([])
        /// Set to end the load.
        let stopped = Atomic<Bool>(false)
        func record(_ request: NotarisationRequest, _ answer: NotarisationAnswer) {
            answers.withLock { $0.append((request.txId, request.inputs, answer.outcome)) }
        }
    }

    /// The configuration of processes A and B in `root/A` and `root/B`, on a new database and
    /// election; their URLs.
    func writePair(in root: String) async throws -> [String: String] {
        let server = try #require(PostgresTrait.current)
        let ensemble = try #require(ZooKeeperEnsemble.current)
        try "hawser-test:pw-\(UUID().uuidString.prefix(8))\n".write(toFile: root + "/zk.credentials", atomically: true, encoding: .utf8)
        let electionName = "notary-\(UUID().uuidString.prefix(8))"
        let ports = try FreePorts.take(2)
        let url = ["A": "http://127.0.0.1:\(ports[0])", "B": "http://127.0.0.1:\(ports[1])"]
        let databaseURL = try await server.createDatabase()
        for (id, port) in [("A", ports[0]), ("B", ports[1])] {
            try FileManager.default.createDirectory(atPath: root + "/\(id)", withIntermediateDirectories: true)
            try writeNotaryFiles(in: root + "/\(id)", port: port) { configuration in
                configuration.database.kind = .postgres
                configuration.database.url = databaseURL
                configuration.ha.mode = .hotWarm
                configuration.ha.id = id
                configuration.ha.advertise = [url[id]!]
                var election = ElectionSettings()
                election.zookeeper = ensemble.connectString
                election.zookeeperCredentials = root + "/zk.credentials"
                election.election = electionName
                election.sessionTimeoutMs = 2_000
                configuration.ha.election = election
            }
        }
        return url
    }

    @Test func theStandbyTakesOverAfterAKillAndAPauseAndNothingIsSignedTwice() async throws {
        let dir = try TemporaryDirectory()
        let root = dir.path
        let url = try await writePair(in: root)
        var a: HawserProcess? = try await HawserProcess.notary(config: root + "/A/hawser.json").0
        try await awaitReady(url["A"]!, "ready")
        let b = try await HawserProcess.notary(config: root + "/B/hawser.json").0
        try await awaitReady(url["B"]!, "standby")

        // The standby answers every API call with the active notary's address.
        let answer = try await awaitStandbyAnswer(url["B"]!, naming: url["A"]!)
        #expect(answer.status == 503 && answer.retryAfter == "1")

        let client = try NotaryClient(urls: [url["A"]!, url["B"]!], notaryKey: notaryKey.publicKey,
                                      retryPolicy: RetryPolicy(maxAttempts: 1_000, baseBackoff: .milliseconds(20), maxBackoff: .milliseconds(200),
                                                               attemptTimeout: .seconds(10), deadline: .seconds(90)))
        let history = History()
        // Two clients race for each contested state while the faults happen.
        let load = Self.contestedLoad(client, history)
        do {
            try await awaitAnswers(history, atLeast: 10)
            a?.kill()
            a = nil
            try await awaitReady(url["B"]!, "ready")
            let afterKill = history.answers.withLock { $0.count }
            try await awaitAnswers(history, atLeast: afterKill + 10)

            // SIGSTOP of the active past its session timeout, then SIGCONT: the restarted A takes
            // over and serves while B is paused (a B paused inside a transaction on the shared
            // database holds the fencing row only until PostgreSQL ends that transaction), and B,
            // still running, finds itself deposed and stands by.
            let restarted = try await HawserProcess.notary(config: root + "/A/hawser.json").0
            try await awaitReady(url["A"]!, "standby")
            b.pause()
            try await awaitReady(url["A"]!, "ready")
            let afterPause = history.answers.withLock { $0.count }
            try await awaitAnswers(history, atLeast: afterPause + 10)
            b.resume()
            try await awaitReady(url["B"]!, "standby")
            #expect(b.isRunning, "the deposed notary stands by without a restart")
            let standby = try await get(url["B"]! + "/v1/identity")
            #expect(standby.status == 503 && standby.body.contains("\"code\":\"standby\"") && standby.retryAfter == "1", "\(standby)")
            let afterResume = history.answers.withLock { $0.count }
            try await awaitAnswers(history, atLeast: afterResume + 10)
            history.stopped.store(true, ordering: .relaxed)
            await load.value
            try await check(history, client)
            #expect(await restarted.terminate() == 0)
        } catch {
            history.stopped.store(true, ordering: .relaxed)
            await load.value
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
        // The deposed notary's graceful stop ends: a replica request whose PostgreSQL session
        // the server ended while the notary was paused fails instead of waiting for ever.
        #expect(await b.terminate() == 0)
    }

    /// A standby started with another notary key took over and served: valid requests refused
    /// 403 `invalid_signature`, and its appends, under its key, would have stopped the other
    /// process. Its replica now fails at start on the entry it applied last, its term ends and
    /// it stands by; the process with the notary's key takes over again.
    @Test func aStandbyWithAnotherKeyDoesNotServeAndTheRightOneTakesOver() async throws {
        let dir = try TemporaryDirectory()
        let root = dir.path
        let url = try await writePair(in: root)
        try FileManager.default.removeItem(atPath: root + "/B/notary.key")
        try KeyFile(name: "O=Test Notary", key: SigningKey(seed: [UInt8](repeating: 9, count: 32))!).save(root + "/B/notary.key")
        var a: HawserProcess? = try await HawserProcess.notary(config: root + "/A/hawser.json").0
        try await awaitReady(url["A"]!, "ready")
        let client = try NotaryClient(urls: [url["A"]!, url["B"]!], notaryKey: notaryKey.publicKey,
                                      retryPolicy: RetryPolicy(maxAttempts: 1_000, baseBackoff: .milliseconds(20), maxBackoff: .milliseconds(200),
                                                               attemptTimeout: .seconds(10), deadline: .seconds(90)))
        do {
            let first = signed(.sha256(Array("first".utf8)), inputs: [StateRef(txId: .sha256(Array("s1".utf8)), index: 0)])
            #expect(try await client.notarise(first).outcome == .committed)
            let b = try await HawserProcess.notary(config: root + "/B/hawser.json", mergingErrors: true).0
            try await awaitReady(url["B"]!, "standby")
            a?.kill()
            a = nil
            // B wins, finds it cannot authenticate the log it shares, and gives the term up.
            let deadline = ContinuousClock.now + .seconds(60)
            while !b.printed.contains("is not a chained Hawser log entry that this replica's notary key verifies") {
                guard ContinuousClock.now < deadline else { Issue.record("B never refused: \(b.printed.suffix(2000))"); break }
                try await Task.sleep(for: .milliseconds(100))
            }
            a = try await HawserProcess.notary(config: root + "/A/hawser.json").0
            try await awaitReady(url["A"]!, "ready")
            let second = signed(.sha256(Array("second".utf8)), inputs: [StateRef(txId: .sha256(Array("s2".utf8)), index: 0)])
            #expect(try await client.notarise(second).outcome == .committed)
            #expect(b.isRunning, "B stands by without a restart")
            #expect(try await client.answer(for: first.txId).outcome == .committed)
            #expect(await a!.terminate() == 0)
            #expect(await b.terminate() == 0)
        } catch {
            a?.kill()
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    /// Two clients race for each contested state (one of each pair must lose), recording every
    /// answer in `history`, until `history.stopped` is set.
    static func contestedLoad(_ client: NotaryClient, _ history: History) -> Task<Void, Never> {
        Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<2 {
                    group.addTask {
                        var i = 0
                        while !history.stopped.load(ordering: .relaxed) {
                            let contested = StateRef(txId: .sha256(Array("contested-\(i)".utf8)), index: 0)
                            let own = StateRef(txId: .sha256(Array("own-\(worker)-\(i)".utf8)), index: 0)
                            let request = signed(.sha256(Array("tx-\(worker)-\(i)".utf8)), inputs: [contested, own])
                            if let answer = try? await client.notarise(request) { history.record(request, answer) }
                            i += 1
                        }
                    }
                }
            }
        }
    }

    /// No state committed for two transactions; every committed answer is the active's record.
    func check(_ history: History, _ client: NotaryClient) async throws {
        let answers = history.answers.withLock { $0 }
        var spentBy = [StateRef: SecureHash]()
        for answer in answers where answer.outcome == .committed {
            for ref in answer.inputs {
                if let other = spentBy[ref], other != answer.txId {
                    Issue.record("\(ref) was answered committed for \(other.hex) and \(answer.txId.hex)")
                }
                spentBy[ref] = answer.txId
            }
        }
        #expect(answers.contains { $0.outcome == .committed } && answers.contains { $0.outcome != .committed },
                "the load both won and lost races: \(answers.count) answers")
        for answer in answers {
            #expect(try await client.answer(for: answer.txId).outcome == answer.outcome, "\(answer.txId.hex)")
        }
    }

    // MARK: Helpers

    func awaitAnswers(_ history: History, atLeast count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + .seconds(90)
        while history.answers.withLock({ $0.count }) < count {
            guard ContinuousClock.now < deadline else {
                Issue.record("fewer than \(count) answers within 90 s", sourceLocation: sourceLocation)
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Polls `/health/ready` until its body's status is `expected` (the node's pair test's wait).
    func awaitReady(_ url: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await HotWarmTests().awaitReady(url, expected, sourceLocation: sourceLocation)
    }

    /// Polls the standby until its answer names the active notary.
    func awaitStandbyAnswer(_ url: String, naming active: String, sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> (status: Int, body: String, retryAfter: String?) {
        let deadline = ContinuousClock.now + .seconds(30)
        var last = ""
        while ContinuousClock.now < deadline {
            let answer = try await get(url + "/v1/identity")
            last = answer.body
            if answer.body.contains("\"code\":\"standby\""), answer.body.contains("\"active\":\"\(active)\"") { return answer }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("\(url) never named \(active) as the active notary; last answer: \(last)", sourceLocation: sourceLocation)
        throw CancellationError()
    }

    func get(_ url: String) async throws -> (status: Int, body: String, retryAfter: String?) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body), response.headers.first(name: "Retry-After"))
    }
}

/// The notary's `database` and `ha` sections: every problem named, unknown keys refused.
@Suite(.timeLimit(.minutes(10))) struct NotaryHAConfigurationTests {
    @Test func anHANotaryNeedsPostgresAndTheSettingsOfItsMode() throws {
        var configuration = NotaryConfiguration()
        configuration.acceptAnyParty = true
        configuration.ha.mode = .hotWarm
        let problems = configuration.problems.joined(separator: "\n")
        for expected in ["ha.mode hot-warm needs ha.id", "needs ha.advertise", "needs ha.election", "needs database.kind postgres"] {
            #expect(problems.contains(expected), "\(problems)")
        }
        // Hot-cold needs PostgreSQL too, and leaves the election to the watchdog.
        configuration.ha.mode = .hotCold
        configuration.ha.election = ElectionSettings()
        let hotCold = configuration.problems.joined(separator: "\n")
        for expected in ["ha.mode hot-cold needs database.kind postgres", "ha.election is for hot-warm: in hot-cold the watchdog stands"] {
            #expect(hotCold.contains(expected), "\(hotCold)")
        }
        configuration.ha.election = nil
        configuration.database.kind = .postgres
        configuration.database.url = "postgres://u@127.0.0.1/db"
        #expect(configuration.problems == [])
        configuration.database = NodeDatabaseConfiguration()
        configuration.ha.mode = .single
        configuration.database.kind = .postgres
        #expect(configuration.problems == ["database.kind \"postgres\" needs database.url"])
        configuration.database.url = "postgres://u:secret@127.0.0.1/db"
        configuration.log.kind = .jetstream
        let more = configuration.problems.joined(separator: "\n")
        for expected in ["must not hold a password: put it in database.passwordFile or HAWSER_NOTARY_DATABASE_PASSWORD",
                         "database.kind postgres keeps the log in PostgreSQL too"] {
            #expect(more.contains(expected), "\(more)")
        }
        #expect(!more.contains("secret"), "a password is never repeated")
    }

    @Test func unknownDatabaseAndHAKeysAreRefused() throws {
        let dir = try TemporaryDirectory()
        try writeNotaryFiles(in: dir.path)
        let path = dir.path + "/hawser.json"
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        object["database"] = ["kind": "sqlite", "size": 1]
        object["ha"] = ["mode": "single", "election": ["sqlite": "x", "leaseSeconds": 2]]
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: ConfigurationError.self) { try NotaryConfiguration.load(path) }
        let problems = error?.problems ?? []
        for expected in ["unknown option `database.size`", "unknown option `ha.election.leaseSeconds`"] {
            #expect(problems.contains(expected), "\(problems)")
        }
        object["ha"] = ["mode": "warm"]
        object["database"] = nil
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        let mode = #expect(throws: ConfigurationError.self) { try NotaryConfiguration.load(path) }
        #expect(mode?.description.contains("ha.mode must be \"single\", \"hot-warm\", \"hot-cold\" or \"hot-hot\", not \"warm\"") == true, "\(String(describing: mode))")
    }
}
