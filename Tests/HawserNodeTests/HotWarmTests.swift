import AsyncHTTPClient
import Coordination
import Embedded
import Flows
import Foundation
import HawserClient
@testable import HawserNode
import HawserTestSupport
import NIOCore
import Testing
import Vault

/// Two `hawser node run` processes in hot-warm on one SQLite node database, and a remote notary:
/// the standby's answer, kill -9 of the active, and (on an election that a paused process cannot
/// hold: the PostgreSQL lease, ZooKeeper) SIGSTOP of the active past its lease. Every flow started
/// with a client request id ends once, completed, with its own transaction, and the notary agrees
/// with the vault.
@Suite(.serialized) struct HotWarmTests {
    /// A pair of hot-warm (or hot-hot) nodes sharing `root/data`, with their configuration files.
    struct Pair {
        let root: String
        let ports: [String: Int]
        func url(_ id: String) -> String { "http://127.0.0.1:\(ports[id]!)" }
        func config(_ id: String) -> String { root + "/\(id).json" }

        /// The options that name the pair's election to `hawser admin`.
        let electionOptions: [String]

        init(root: String, notary: String, election: ElectionSettings, electionOptions: [String],
             mode: HAConfiguration.Mode = .hotWarm, partitions: Int? = nil) throws {
            self.root = root
            self.electionOptions = electionOptions
            let free = try FreePorts.take(2)
            ports = ["A": free[0], "B": free[1]]
            // Transient notary failures reach the hospital quickly, so flows write while it is down.
            try writeRemoteNodeFiles(in: root, urls: [notary]) { $0.notary.maxAttempts = 2; $0.notary.timeoutMillis = 2_000 }
            let base = try NodeConfiguration.load(root + "/node.json")
            for (id, port) in ports {
                var configuration = base
                configuration.listen.port = port
                configuration.ha.mode = mode
                configuration.ha.partitions = partitions
                configuration.ha.id = id
                configuration.ha.advertise = ["http://127.0.0.1:\(port)"]
                configuration.ha.election = election
                try configuration.save(config(id))
            }
        }

        func start(_ id: String) async throws -> HawserProcess {
            try await HawserProcess.node(config: config(id)).0
        }
    }

    /// The SQLite lease is for processes on one machine that nothing pauses (docs/coordination.md):
    /// a process paused inside a lease transaction keeps the file's write lock, and no other can
    /// lead until it resumes. So kill -9 only; the pause runs on the PostgreSQL lease (below).
    @Test(.timeLimit(.minutes(4))) func theStandbyTakesOverAfterAKillWithEveryFlowOnce() async throws {
        let dir = try TemporaryDirectory()
        let (election, options) = Self.sqliteElection(in: dir.path)
        try await scenario(dir.path, election: election, electionOptions: options, pause: false)
    }

    /// A second process standing with a running one's `ha.id` gives up and exits non-zero, naming
    /// the code the docs give (before, its error said the sentence alone).
    @Test(.timeLimit(.minutes(2))) func aSecondProcessWithTheSameIdExitsNamingDuplicateCandidate() async throws {
        let dir = try TemporaryDirectory()
        let (election, options) = Self.sqliteElection(in: dir.path)
        let notary = try await StandaloneNotary.start()
        defer { notary.kill() }
        let pair = try Pair(root: dir.path, notary: notary.url, election: election, electionOptions: options)
        let a = try await pair.start("A")
        try await awaitReady(pair.url("A"), "ready")
        var twin = try NodeConfiguration.load(pair.config("B"))
        twin.ha.id = "A"
        try twin.save(dir.path + "/twin.json")
        let (status, output) = try await HawserProcess.runToExit(["node", "run", "--config", dir.path + "/twin.json", "--log-level", "error"],
                                                                 killWhenListening: false)
        #expect(status != 0)
        #expect(output.contains("duplicate_candidate: another process already stands in this election as candidate A"), "\(output)")
        #expect(await a.terminate() == 0)
    }

    /// A quick SQLite lease election in `root` (`election.sqlite`, lease 1 s, renewed every 200
    /// ms), as node.json's `ha.election` and as `hawser admin`'s options.
    static func sqliteElection(in root: String) -> (ElectionSettings, [String]) {
        var election = ElectionSettings()
        election.sqlite = "election.sqlite"
        election.leaseMs = 1_000
        election.renewMs = 200
        election.requestTimeoutMs = 300
        election.standAsideMs = 1_000
        return (election, ["--sqlite", root + "/election.sqlite", "--lease-ms", "1000", "--renew-ms", "200", "--request-timeout-ms", "300"])
    }

    /// The standby's answer, kill -9 of the active, and with `pause` SIGSTOP of the next one, on
    /// the election given.
    func scenario(_ root: String, election: ElectionSettings, electionOptions: [String], pause: Bool) async throws {
        let notary = try await StandaloneNotary.start()
        let pair = try Pair(root: root, notary: notary.url, election: election, electionOptions: electionOptions)
        let a = try await pair.start("A")
        try await awaitReady(pair.url("A"), "ready")
        let b = try await pair.start("B")
        try await awaitReady(pair.url("B"), "standby")

        // The standby answers every RPC call with the active node's address, credentials or not.
        let answer = try await awaitStandbyAnswer(pair.url("B"), naming: pair.url("A"))
        #expect(answer.status == 503 && answer.retryAfter == "1")
        #expect(try await status(pair.url("B") + "/health/live").status == 200)

        let client = NodeClient(urls: [pair.url("A"), pair.url("B")], username: "ops", password: "secret",
                                retryPolicy: RetryPolicy(maxAttempts: 1_000, baseBackoff: .milliseconds(20), maxBackoff: .milliseconds(200),
                                                         attemptTimeout: .seconds(10), deadline: .seconds(90)))
        let loads: Int
        do {
            loads = try await exercise(pair, client, notary, a: a, b: b, pause: pause)
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
        #expect(await b.terminate() == 0)
        try await checkLedger(root, notary, loads: loads)
    }

    /// Seeds tokens, then kills A under load, then (`pause`) pauses B past its lease; returns how
    /// many load flows it started (see the tests above).
    func exercise(_ pair: Pair, _ client: NodeClient, _ notary: StandaloneNotary, a first: HawserProcess, b: HawserProcess,
                  pause: Bool) async throws -> Int {
        var a: HawserProcess? = first
        for i in 0..<10 {
            let seed = try await client.run("IssueTokens", arguments: Array(#"{"owner":"O=Alice","amount":10}"#.utf8), clientRequestId: "seed-\(i)")
            #expect(seed.status == "completed")
        }

        // kill -9 of the active while its flows wait for the notary, which is down.
        notary.kill()
        var ids = [String: String]()
        for i in 0..<12 { ids["load-\(i)"] = try await start(i, client).id }
        #expect(try await unfinished(pair.root) == 12, "the notary being down, no flow can have completed")
        a?.kill()
        a = nil
        try await awaitReady(pair.url("B"), "ready")
        // A switchover to the dead node is refused, with the stable code.
        let (refused, refusal) = try await HawserProcess.run(["admin", "switchover", "--to", "A"] + pair.electionOptions)
        #expect(refused != 0 && refusal.contains("unknown_candidate"), "\(refusal)")
        try await notary.restart()
        try await expectEveryFlowCompletedOnce(ids, client)

        // SIGSTOP of the active past its lease, then SIGCONT: the former standby leads, and the
        // paused node, still running, finds itself deposed (its writes refused) and stands by.
        let restarted = try await pair.start("A")
        try await awaitReady(pair.url("A"), "standby")
        // The operator's view: every member's role, epoch, health and address. (A answers
        // `standby` from its start; it is a member once its first round stood it.)
        var json = ""
        var members: [AdminStatus.Member] = []
        try await eventually("A and B both members") {
            let (listed, output) = try await HawserProcess.run(["admin", "status"] + pair.electionOptions)
            json = output
            guard listed == 0 else { return false }
            members = try JSONDecoder().decode(AdminStatus.self, from: Data(output.utf8)).members.sorted { $0.id < $1.id }
            return members.count == 2
        }
        #expect(members.map(\.id) == ["A", "B"] && members.map(\.role) == ["standby", "active"], "\(json)")
        #expect(members[1].epoch != nil && members[0].epoch == nil && members.allSatisfy(\.healthy), "\(json)")
        #expect(members.map(\.addresses) == [[pair.url("A")], [pair.url("B")]])
        guard pause else {
            #expect(await restarted.terminate() == 0)
            return ids.count
        }
        notary.kill()
        var later = [String: String]()
        for i in 12..<18 { later["load-\(i)"] = try await start(i, client).id }
        #expect(try await unfinished(pair.root) == 6)
        b.pause()
        // A wins the election once B's lease lapses; its claiming write may wait for B's SQLite
        // write lock if B was paused inside a transaction, so A serves only after B resumes.
        try await awaitReady(pair.url("A"), "ready", orTakingOver: true)
        try await notary.restart()
        b.resume()
        try await awaitReady(pair.url("A"), "ready")
        try await awaitReady(pair.url("B"), "standby")
        #expect(b.isRunning, "the deposed node stands by without a restart")
        _ = try await awaitStandbyAnswer(pair.url("B"), naming: pair.url("A"))
        try await expectEveryFlowCompletedOnce(ids.merging(later) { x, _ in x }, client)
        #expect(await restarted.terminate() == 0)
        return ids.count + later.count
    }

    /// Every flow once in the node database (10 seeds and `loads` load flows, and `killed` flows
    /// that issued nothing), tokens conserved, the notary agreeing with the vault.
    /// `issuedToBob`: flows besides the load that issued Bob that many tokens each.
    func checkLedger(_ root: String, _ notary: StandaloneNotary, loads: Int, killed: Int = 0, issuedToBob: [Int64] = []) async throws {
        // Alice: 100 - a move of 2 for each odd load flow; Bob: an issue of 7 for each even one, and
        // the moves. No state spent twice: the notary's record of each state agrees with the vault.
        let (issues, moves) = ((loads + 1) / 2, loads / 2)
        let database = try SQLiteNodeDatabase(path: root + "/data/node.sqlite")
        var expected: [FlowStatus: Int] = [.completed: 10 + loads + issuedToBob.count]
        if killed > 0 { expected[.killed] = killed }
        #expect(try await database.flows.counts() == expected)
        let states = try await database.vault.query(VaultQuery(type: "token", consumption: .all, limit: 100_000))
        var balances = [String: Int64]()
        for state in states where !state.isConsumed {
            let token = try JSONSerialization.jsonObject(with: Data(state.data)) as! [String: Any]
            balances[state.owner, default: 0] += (token["amount"] as! NSNumber).int64Value
        }
        #expect(balances == ["O=Alice": 100 - 2 * Int64(moves), "O=Bob": 7 * Int64(issues) + 2 * Int64(moves) + issuedToBob.reduce(0, +)])
        await notary.stop()
        let store = try notary.store()
        for state in states {
            #expect(try await store.consumer(of: state.ref) == state.consumedBy, "\(state.ref)")
            #expect(try await store.outcome(of: state.ref.txId) == .committed)
        }
    }

    @Test func aHotWarmNodeNeedsItsIdAddressesElectionAndARemoteNotary() throws {
        var configuration = NodeConfiguration()
        configuration.ha.mode = .hotWarm
        let problems = configuration.problems.joined(separator: "\n")
        for expected in ["needs ha.id", "needs ha.advertise", "needs ha.election", "needs notary.kind remote"] {
            #expect(problems.contains(expected), "\(problems)")
        }
        configuration.ha.election = ElectionSettings()
        configuration.ha.advertise = ["ftp://x", "grpc://10.0.0.1:9090"]  // the RPC API is HTTP: a gRPC address is no advertised URL
        configuration.ha.id = "a b"
        let more = configuration.problems.joined(separator: "\n")
        for expected in ["exactly one election back end", "ha.advertise[0]", "ha.advertise[1]", "ha.id \"a b\""] {
            #expect(more.contains(expected), "\(more)")
        }
        #expect(more.contains("give exactly one election back end: ha.election.zookeeper, ha.election.postgres or ha.election.sqlite"), "\(more)")
        configuration.ha.election?.sqlite = "lease.sqlite"
        configuration.ha.election?.renewMs = 1_000
        #expect(configuration.problems.contains { $0.hasPrefix("ha.election.renewMs must be 10 ms to a third of ha.election.leaseMs") })
    }

    /// Smaller values a helper found taken: a blank name, a blank authorised party, `ha.id` and
    /// `ha.advertise` in hot-cold (unused there), and `+5` as the watchdog's epoch.
    @Test func blankNamesHotColdCandidateSettingsAndASignedEpochAreRefused() throws {
        var notary = NotaryConfiguration()
        notary.name = "   "
        notary.authorisedParties = [.init(name: "", publicKey: alice.publicKey.base64)]
        #expect(notary.problems.contains("name must not be empty or blank"))
        #expect(notary.problems.contains("authorisedParties[0].name must not be empty or blank"))
        var node = NodeConfiguration()
        node.ha.mode = .hotCold
        node.ha.id = "A"
        #expect(node.problems.contains { $0.hasPrefix("ha.id and ha.advertise are for hot-warm") })
        #expect(throws: ConfigurationError.self) { try HAConfiguration.hotColdEpoch(environment: ["HAWSER_FENCE_EPOCH": "+5"], role: "node") }
        #expect(try HAConfiguration.hotColdEpoch(environment: ["HAWSER_FENCE_EPOCH": "5"], role: "node") == Epoch(5))
    }

    /// Each timing is named as written and bounded: a timing of 2^63 ms passed validation before
    /// and trapped the process once added to a clock reading (`standAsideMs`, when it resigned).
    @Test func electionTimingsAreNamedAsWrittenAndBoundedByADay() {
        var settings = ElectionSettings()
        settings.sqlite = "lease.sqlite"
        #expect(settings.problems(prefix: "ha.election.") == [])
        settings.standAsideMs = .max
        settings.holdDownMs = -1
        #expect(settings.problems(prefix: "ha.election.") == [
            "ha.election.standAsideMs must be 0 to 86400000 ms (a day), not \(Int.max)",
            "ha.election.holdDownMs must be 0 to 86400000 ms (a day), not -1",
        ])
        settings = ElectionSettings()
        settings.zookeeper = "127.0.0.1:2181"
        settings.sessionTimeoutMs = 300
        #expect(settings.problems { "--" + $0 }.contains { $0.hasPrefix("--sessionTimeoutMs must be 400 to 60000 ms") })
    }

    /// A timing of the other back end was silently ignored, out of range or not (found by an
    /// outside checker); an empty or a directory's name as the lease file passed, to fail later
    /// naming no option.
    @Test func timingsOfTheOtherBackEndAndBadLeaseFilesAreRefused() throws {
        var zookeeper = ElectionSettings()
        zookeeper.zookeeper = "127.0.0.1:2181"
        zookeeper.leaseMs = 100
        zookeeper.standAsideMs = 1
        #expect(zookeeper.problems(prefix: "ha.election.") == [
            "ha.election.leaseMs is for a lease (ha.election.postgres, ha.election.sqlite): this election does not use it",
            "ha.election.standAsideMs is for a lease (ha.election.postgres, ha.election.sqlite): this election does not use it",
        ])
        var lease = ElectionSettings()
        lease.postgres = "postgres://hawser@127.0.0.1/hawser"
        lease.checkIntervalMs = 1
        #expect(lease.problems(prefix: "ha.election.") == ["ha.election.checkIntervalMs is for ha.election.zookeeper: this election does not use it"])
        lease.checkIntervalMs = ElectionSettings().checkIntervalMs  // the default, given: no harm
        #expect(lease.problems(prefix: "ha.election.") == [])

        let dir = try TemporaryDirectory()
        var sqlite = ElectionSettings()
        for (path, problem) in [("", "ha.election.sqlite must name a file"),
                                (".", "ha.election.sqlite \(dir.path)/. is a directory: name the lease file in it"),
                                ("sub/", "ha.election.sqlite sub/ ends in /: name the lease file, not a directory")] {
            sqlite.sqlite = path
            #expect(sqlite.resolved(against: dir.path).problems(prefix: "ha.election.") == [problem], "\(path)")
        }
        sqlite.sqlite = "lease.sqlite"
        #expect(sqlite.resolved(against: dir.path).problems(prefix: "ha.election.") == [])
    }

    // MARK: Helpers

    struct AdminStatus: Decodable {
        struct Member: Decodable { var id: String; var role: String; var epoch: UInt64?; var healthy: Bool; var addresses: [String] }
        var members: [Member]
    }

    /// Flows in the shared node database that have not ended.
    func unfinished(_ root: String) async throws -> Int {
        let counts = try await SQLiteNodeDatabase(path: root + "/data/node.sqlite").flows.counts()
        return counts.filter { !$0.key.isTerminal }.values.reduce(0, +)
    }

    /// Issues of 7 to Bob (even `i`) and moves of 2 from Alice to Bob (odd), started and not awaited.
    func start(_ i: Int, _ client: NodeClient) async throws -> NodeFlow {
        let (flow, arguments) = i % 2 == 0
            ? ("IssueTokens", #"{"owner":"O=Bob","amount":7}"#)
            : ("MoveTokens", #"{"owner":"O=Alice","newOwner":"O=Bob","amount":2}"#)
        return try await client.startFlow(flow, arguments: Array(arguments.utf8), clientRequestId: "load-\(i)")
    }

    /// Each flow completed, its client request id names it alone, and no two share a transaction.
    func expectEveryFlowCompletedOnce(_ ids: [String: String], _ client: NodeClient) async throws {
        var txIds = Set<String>()
        for (key, id) in ids.sorted(by: { $0.key < $1.key }) {
            let flow = try await client.waitForEnd(id)
            #expect(flow.status == "completed", "\(key): \(flow.status) \(flow.error ?? "")")
            #expect(try await client.flow(clientRequestId: key)?.id == id)
            let result = try JSONSerialization.jsonObject(with: flow.result ?? Data()) as? [String: Any]
            let txId = result?["txId"] as? String ?? ""
            #expect(txIds.insert(txId).inserted, "two flows completed with transaction \(txId)")
        }
    }

    /// Polls `/health/ready` until its body's status is `expected` (or, with `orTakingOver`, the
    /// node says it is taking over), within a minute.
    func awaitReady(_ url: String, _ expected: String, orTakingOver: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        var last = ""
        while ContinuousClock.now < deadline {
            if let answer = try? await status(url + "/health/ready") {
                last = "\(answer.status) \(answer.body)"
                if answer.body.contains("\"status\":\"\(expected)\"") { return }
                if orTakingOver, answer.body.contains("taking over as the active node") { return }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("\(url) did not become \(expected); last answer: \(last)", sourceLocation: sourceLocation)
        throw CancellationError()
    }

    /// Polls an RPC call on the standby until its answer names the active node (its address is
    /// looked up in the election once the standby has seen who leads).
    func awaitStandbyAnswer(_ url: String, naming active: String, sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> (status: Int, body: String, retryAfter: String?) {
        let deadline = ContinuousClock.now + .seconds(30)
        var last = ""
        while ContinuousClock.now < deadline {
            let answer = try await status(url + "/v1/flows", post: true)
            last = answer.body
            if answer.body.contains("\"code\":\"standby\""), answer.body.contains("\"active\":\"\(active)\"") { return answer }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("\(url) never named \(active) as the active node; last answer: \(last)", sourceLocation: sourceLocation)
        throw CancellationError()
    }

    func status(_ url: String, post: Bool = false) async throws -> (status: Int, body: String, retryAfter: String?) {
        var request = HTTPClientRequest(url: url)
        if post {
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"flow":"IssueTokens","arguments":{"owner":"O=Alice","amount":1}}"#))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body), response.headers.first(name: "Retry-After"))
    }
}

/// The same two processes, elected through the PostgreSQL lease: a process paused inside a lease
/// round holds its row only until PostgreSQL ends the stalled transaction, so the standby takes
/// over while the active one is paused.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"),
       PostgresTrait(), .timeLimit(.minutes(4)))
struct HotWarmPostgresLeaseTests {
    @Test func theStandbyTakesOverAfterAKillAndAPauseWithEveryFlowOnce() async throws {
        let server = try #require(PostgresTrait.current)
        let url = try await server.createDatabase()
        let dir = try TemporaryDirectory()
        var election = ElectionSettings()
        election.postgres = url
        election.election = "hot-warm"
        // A round may take a while on a loaded machine; a paused leader's stalled round is ended
        // by the server after the request timeout.
        election.leaseMs = 3_000
        election.renewMs = 300
        election.requestTimeoutMs = 1_000
        election.standAsideMs = 1_000
        try await HotWarmTests().scenario(dir.path, election: election,
                                          electionOptions: ["--postgres", url, "--election", "hot-warm", "--lease-ms", "3000",
                                                            "--renew-ms", "300", "--request-timeout-ms", "1000"],
                                          pause: true)
    }
}

/// The same two processes, elected through a 3-server ZooKeeper ensemble with digest ACLs.
@Suite(.serialized, .enabled(if: ZooKeeperEnsemble.isAvailable, "needs the Debian zookeeper package and a JDK"),
       .zooKeeperEnsemble, .timeLimit(.minutes(4)))
struct HotWarmZooKeeperTests {
    @Test func theStandbyTakesOverAfterAKillAndAPauseWithEveryFlowOnce() async throws {
        let ensemble = try #require(ZooKeeperEnsemble.current)
        let dir = try TemporaryDirectory()
        let credentials = dir.path + "/zk.credentials"
        try "hawser-test:pw-\(UUID().uuidString.prefix(8))\n".write(toFile: credentials, atomically: true, encoding: .utf8)
        var election = ElectionSettings()
        election.zookeeper = ensemble.connectString
        election.zookeeperCredentials = "zk.credentials"
        election.election = "hot-warm-\(UUID().uuidString.prefix(8))"
        election.sessionTimeoutMs = 2_000
        try await HotWarmTests().scenario(dir.path, election: election,
                                          electionOptions: ["--zookeeper", ensemble.connectString, "--zookeeper-credentials", credentials,
                                                            "--election", election.election, "--session-timeout-ms", "2000"],
                                          pause: true)
    }
}

/// A hot-cold node runs only with the epoch its watchdog won, holds its fence at it, and exits
/// when the database has seen a newer one.
@Suite(.timeLimit(.minutes(10))) struct HotColdTests {
    @Test(.timeLimit(.minutes(2))) func aHotColdNodeNeedsItsEpochAndExitsWhenItIsStale() async throws {
        let notary = try await StandaloneNotary.start()
        let dir = try TemporaryDirectory()
        try writeRemoteNodeFiles(in: dir.path, urls: [notary.url]) { $0.ha.mode = .hotCold }
        let config = dir.path + "/node.json"
        let run = ["node", "run", "--config", config, "--log-level", "error"]

        for (value, expected) in [(nil, "HAWSER_FENCE_EPOCH is not set"), ("x1", "must be a positive whole number")] {
            let (status, output) = try await HawserProcess.runToExit(run, environment: value.map { [HAConfiguration.fenceEpochVariable: $0] } ?? [:])
            #expect(status != 0 && status != SIGKILL && output.contains(expected), "\(output)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data/node.sqlite"), "a refused start opens nothing")

        // Epoch 5: it serves, and the database learns the epoch at once.
        let node = try await HawserProcess.node(config: config, environment: [HAConfiguration.fenceEpochVariable: "5"])
        let client = NodeClient(urls: ["http://127.0.0.1:\(node.port)"], username: "ops", password: "secret")
        #expect(try await client.run("IssueTokens", arguments: Array(#"{"owner":"O=Alice","amount":1}"#.utf8)).status == "completed")
        try await client.shutdown()
        #expect(await node.0.terminate() == 0)

        // A node started with an older epoch (a watchdog whose win was overtaken) writes nothing and exits.
        // It listens before its claim is refused: it must be left to exit on its own (within the time limit).
        let (status, output) = try await HawserProcess.runToExit(run, environment: [HAConfiguration.fenceEpochVariable: "4"],
                                                                 killWhenListening: false)
        #expect(status != 0 && status != SIGKILL && output.contains("epoch 4 is older than epoch 5"), "\(output)")
        #expect(try await SQLiteNodeDatabase(path: dir.path + "/data/node.sqlite").flows.counts() == [.completed: 1])
    }
}
