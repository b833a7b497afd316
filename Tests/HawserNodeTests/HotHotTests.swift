import AsyncHTTPClient
import Coordination
import Embedded
import Flows
import Foundation
import HawserClient
import HawserCore
@testable import HawserNode
import HawserTestSupport
import NIOCore
import Testing

/// Two `hawser node run` processes in hot-hot on one SQLite node database (SQLite leases) and a
/// remote notary: the partitions spread over both, each process starts flows only in partitions it
/// owns, and after kill -9 of one the other takes its partitions over and finishes its flows, each
/// once. The ledger is checked as for hot-warm (`HotWarmTests.checkLedger`).
@Suite(.serialized) struct HotHotTests {
    let hotWarm = HotWarmTests()
    static let partitions = 4

    @Test(.timeLimit(.minutes(4))) func partitionsSpreadAndASurvivorFinishesTheFlowsOfAKilledProcess() async throws {
        let dir = try TemporaryDirectory()
        var (election, options) = HotWarmTests.sqliteElection(in: dir.path)
        election.holdDownMs = 500
        let notary = try await StandaloneNotary.start()
        let pair = try HotWarmTests.Pair(root: dir.path, notary: notary.url, election: election, electionOptions: options,
                                         mode: .hotHot, partitions: Self.partitions)
        var a: HawserProcess? = try await pair.start("A")
        try await hotWarm.awaitReady(pair.url("A"), "ready")
        let b = try await pair.start("B")
        // B serves once the balancer (A, the leader of partition 0) has moved half of the partitions to it.
        try await hotWarm.awaitReady(pair.url("B"), "ready")
        let leads = try await awaitLeads(options) { $0["A"]?.count == 2 && $0["B"]?.count == 2 }
        // Each says on its output and in its metrics which partitions it serves: those it leads, once their flows resumed.
        for (id, process) in [("A", a!), ("B", b)] {
            try await eventually("\(id) serving its partitions") { Self.serving(process.printed) == Set(leads[id] ?? []) }
            let metrics = try await hotWarm.status(pair.url(id) + "/metrics").body
            for partition in 0..<Self.partitions {
                let line = "hawser_partition_serving{partition=\"\(partition)\"} \(leads[id]?.contains(partition) == true ? 1 : 0)"
                #expect(metrics.contains(line), "\(id): \(line)")
            }
        }

        let retries = RetryPolicy(maxAttempts: 1_000, baseBackoff: .milliseconds(20), maxBackoff: .milliseconds(200),
                                  attemptTimeout: .seconds(10), deadline: .seconds(90))
        let clients = [pair.url("A"), pair.url("B"), "both"].map {
            NodeClient(urls: $0 == "both" ? [pair.url("A"), pair.url("B")] : [$0], username: "ops", password: "secret", retryPolicy: retries)
        }
        do {
            try await exercise(pair, clients, notary, leads: leads, a: &a, b: b, options: options)
        } catch {
            for client in clients { try await client.shutdown() }
            throw error
        }
        for client in clients { try await client.shutdown() }
    }

    /// Seeds from both processes, then loads from both with the notary down, then kill -9 of A.
    func exercise(_ pair: HotWarmTests.Pair, _ clients: [NodeClient], _ notary: StandaloneNotary, leads: [String: [Int]],
                  a: inout HawserProcess?, b: HawserProcess, options: [String]) async throws {
        // Each process runs the flows it starts: their ids fall in partitions it owns.
        let map = FlowPartitions(count: Self.partitions)
        for i in 0..<10 {
            let process = i % 2 == 0 ? "A" : "B"
            let seed = try await clients[i % 2].run("IssueTokens", arguments: Array(#"{"owner":"O=Alice","amount":10}"#.utf8),
                                                    clientRequestId: "seed-\(i)")
            #expect(seed.status == "completed")
            #expect(leads[process]?.contains(map.partition(of: FlowID(seed.id))) == true, "seed \(i) from \(process): \(seed.id)")
        }

        // kill -9 of A while the flows of both wait for the notary, which is down.
        notary.kill()
        var ids = [String: String]()
        for i in 0..<12 { ids["load-\(i)"] = try await hotWarm.start(i, clients[i % 2]).id }
        #expect(try await hotWarm.unfinished(pair.root) == 12, "the notary being down, no flow can have completed")
        // `hawser node status` shows the workers, the partitions each leads under which
        // epoch, and each partition's lag: its share of the 12 waiting flows.
        let (exit, printed) = try await HawserProcess.run(["node", "status", "--config", pair.config("B")])
        #expect(exit == 0, "\(printed)")
        let status = try #require(try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: Any], "\(printed)")
        let workers = (status["workers"] as? [[String: Any]] ?? []).map { ($0["id"] as? String ?? "", Set($0["leads"] as? [Int] ?? [])) }
        #expect(workers.map(\.0) == ["A", "B"] && workers.allSatisfy { Set(leads[$0.0] ?? []) == $0.1 }, "\(printed)")
        let partitions = status["partition"] as? [[String: Any]] ?? []
        #expect(status["partitions"] as? Int == Self.partitions && partitions.count == Self.partitions)
        #expect(partitions.reduce(0) { $0 + ($1["unfinished"] as? Int ?? 0) } == 12, "\(printed)")
        for entry in partitions {
            let (k, unfinished) = (entry["partition"] as? Int ?? -1, entry["unfinished"] as? Int ?? 0)
            #expect(unfinished == ids.values.filter { map.partition(of: FlowID($0)) == k }.count, "\(printed)")
            #expect((entry["oldestWaitMs"] != nil) == (unfinished > 0) && (entry["epoch"] as? Int ?? 0) > 0, "\(printed)")
        }
        // A repeated start returns its flow; one that waits, waits where the flow runs: B names A,
        // which started load-0.
        let start = #"{"flow":"IssueTokens","arguments":{"owner":"O=Bob","amount":7},"clientRequestId":"load-0"}"#
        let repeated = try await post(pair.url("B") + "/v1/flows", start)
        #expect(repeated.status == 200 && repeated.body.contains(#""id":"\#(ids["load-0"]!)""#), "\(repeated)")
        let waiting = try await post(pair.url("B") + "/v1/flows?wait=5", start)
        #expect(waiting.status == 503 && waiting.body.contains(#""code":"standby""#)
                && waiting.body.contains(#""active":"\#(pair.url("A"))""#)
                && waiting.body.contains("is in partition \(FlowPartitions(count: Self.partitions).partition(of: FlowID(ids["load-0"]!))), which the process at \(pair.url("A")) runs"),
                "\(waiting)")
        a?.kill()
        a = nil
        _ = try await awaitLeads(options) { $0["B"]?.count == Self.partitions }
        try await hotWarm.awaitReady(pair.url("B"), "ready")
        try await notary.restart()
        try await hotWarm.expectEveryFlowCompletedOnce(ids, clients[2])
        #expect(await b.terminate() == 0)
        try await hotWarm.checkLedger(pair.root, notary, loads: ids.count)
    }

    /// Every process must split the flows alike, or two could run one flow (partition 3 of 4 and
    /// partition 7 of 8 both hold a flow whose hash is 7 mod 8): the database records the count of
    /// the first process, a process with another refuses to start, and `hawser node repartition`
    /// changes it only while no process runs or stands in a partition's election.
    @Test(.timeLimit(.minutes(2))) func thePartitionCountIsRecordedAndChangedOnlyWithEveryProcessStopped() async throws {
        let dir = try TemporaryDirectory()
        let (election, _) = HotWarmTests.sqliteElection(in: dir.path)
        let notary = try await StandaloneNotary.start()
        defer { notary.kill() }
        let pair = try HotWarmTests.Pair(root: dir.path, notary: notary.url, election: election, electionOptions: [],
                                         mode: .hotHot, partitions: Self.partitions)
        var eight = try NodeConfiguration.load(pair.config("B"))
        eight.ha.partitions = 8
        try eight.save(pair.config("B"))

        let a = try await pair.start("A")
        try await hotWarm.awaitReady(pair.url("A"), "ready")
        let (refused, why) = try await HawserProcess.runToExit(["node", "run", "--config", pair.config("B")])
        #expect(refused != 0 && why.contains("ha.partitions is 8, but the node database splits its flows into 4 partitions"), "\(why)")
        let (busy, lock) = try await HawserProcess.run(["node", "repartition", "--config", pair.config("B")])
        #expect(busy != 0 && lock.contains("(hawser node run); stop it first"), "\(lock)")
        #expect(await a.terminate() == 0)
        // A file naming another election cannot check that the node's processes are stopped: refused.
        var elsewhere = eight
        elsewhere.ha.election?.election = "other"
        try elsewhere.save(dir.path + "/other.json")
        let (misnamed, named) = try await HawserProcess.run(["node", "repartition", "--config", dir.path + "/other.json"])
        #expect(misnamed != 0 && named.contains("but the node's processes stand in sqlite \(dir.path)/election.sqlite default"), "\(named)")

        // A process elsewhere (here: this test) stands in partition 0's election: refused.
        var p0 = election.resolved(against: dir.path)
        p0.election += ".p0"
        let standing = try p0.makeElection(candidate: Candidate(id: "elsewhere", addresses: []), health: HealthChecks(), logger: quietLogger)
        let stand = Task { try await standing.run() }
        try await eventually("a repartition refused for the process standing") {
            let (status, output) = try await HawserProcess.run(["node", "repartition", "--config", pair.config("B")])
            return status != 0 && output.contains("elsewhere still stands in the election of partition 0 (default.p0)")
        }
        stand.cancel()
        _ = try? await stand.value
        var done = ""
        try await eventually("the repartition") {
            let (status, output) = try await HawserProcess.run(["node", "repartition", "--config", pair.config("B")])
            done = output
            return status == 0
        }
        #expect(done.contains("the node database splits its flows into 8 partitions (it split them into 4)"), "\(done)")
        let b = try await pair.start("B")
        try await hotWarm.awaitReady(pair.url("B"), "ready")
        #expect(await b.terminate() == 0)
    }

    /// The partitions whose last `serving`/`released` event line in `output` is `serving`.
    static func serving(_ output: String) -> Set<Int> {
        var last: [Int: String] = [:]
        for line in output.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let event = object["event"] as? String, let partition = object["partition"] as? Int else { continue }
            last[partition] = event
        }
        return Set(last.filter { $0.value == "serving" }.keys)
    }

    /// POSTs `body` as the pair's RPC user (as nobody: `authorised` false).
    func post(_ url: String, _ body: String, authorised: Bool = true) async throws -> (status: Int, body: String, retryAfter: String?) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if authorised { request.headers.add(name: "Authorization", value: "Basic " + Data("ops:secret".utf8).base64EncodedString()) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)),
                response.headers.first(name: "Retry-After"))
    }

    /// Partitions per leading process, from `hawser admin status --partitions`, once `done` holds.
    func awaitLeads(_ options: [String], _ done: ([String: [Int]]) -> Bool) async throws -> [String: [Int]] {
        struct Status: Decodable { var leads: [String: [Int]] }
        var leads: [String: [Int]] = [:]
        try await eventually("the partitions led as expected") {
            let (code, output) = try await HawserProcess.run(["admin", "status", "--partitions", "\(Self.partitions)"] + options)
            guard code == 0, let status = try? JSONDecoder().decode(Status.self, from: Data(output.utf8)) else { return false }
            leads = status.leads
            return done(leads)
        }
        return leads
    }

    @Test func partitionsAreStableAndEveryNewIdFallsInItsPartition() {
        let map = FlowPartitions(count: 16)
        // FNV-1a 64 of the id's UTF-8 bytes, mod the count (docs/node.md): a client can compute it.
        #expect(map.partition(of: FlowID("")) == Int(UInt64(0xcbf2_9ce4_8422_2325) % 16))
        #expect(FlowPartitions(count: 1000).partition(of: FlowID("a")) == Int(UInt64(0xaf63_dc4c_8601_ec8c) % 1000))
        #expect(map.partition(of: FlowID("0195f0e4-8c1a-7a3b-9d2e-4f5a6b7c8d9e")) == 7)  // docs/node.md's example
        for partition in 0..<16 {
            let ids = (0..<20).map { _ in map.newID(in: partition) }
            #expect(ids.allSatisfy { map.partition(of: $0) == partition && UUID(uuidString: $0.rawValue) != nil })
            #expect(Set(ids).count == ids.count)
        }
    }

    /// A partition's engine sees only its partition's unfinished flows and replay markers, and a
    /// write about another partition's flow is refused (and reported) before it reaches the
    /// database: the partition's fence proves nothing about other partitions' flows.
    @Test func aPartitionsStoreSeesAndWritesOnlyItsOwnFlows() async throws {
        let dir = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: dir.path + "/node.sqlite")
        let map = FlowPartitions(count: 4)
        let ids = (0..<4).flatMap { k in (0..<3).map { _ in map.newID(in: k) } }
        let now = Instant(microsecondsSinceEpoch: 1)
        _ = try await database.flows.commit(ids.flatMap { id in
            [FlowWrite.start(FlowRecord(id: id, clientRequestId: nil, flowName: "F", arguments: [], attempts: 0, createdAt: now, updatedAt: now)),
             .replayMarker(id, true)]
        })
        let refusals = RefusedWriteAnswerTests.RefusalCount()
        let store = FencedFlowStore(base: database.flows, owns: { map.partition(of: $0) == 1 }) { _ in refusals.add() }
        let own = Set(ids.filter { map.partition(of: $0) == 1 })
        #expect(Set(try await store.resumable().map(\.id)) == own)
        #expect(try await store.replayMarkers() == own)

        let other = try #require(ids.first { map.partition(of: $0) == 2 })
        let write = FlowWrite.state(other, FlowState(status: .killed, attempts: 0, updatedAt: now), [])
        await #expect(throws: CoordinationError.self) { try await store.commit([.replayMarker(own.first!, false), write]) }
        #expect(refusals.count == 1)
        #expect(try await database.flows.record(other)?.status == .running, "the refused commit changed nothing")
        #expect(try await database.flows.replayMarkers().count == ids.count)
        _ = try await store.commit([.replayMarker(own.first!, false)])
        #expect(try await database.flows.replayMarkers().count == ids.count - 1)
    }

    /// The database records the first hot-hot process's split and election; a process whose own
    /// differ, or a process of another mode, is refused before it runs anything. (A process in
    /// another election took partitions whose epochs its election also reached: an outside audit.)
    @Test func theRecordedSplitAndElectionKeepOutProcessesThatDiffer() async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteNodeDatabase(path: dir.path + "/node.sqlite").flows
        var ha = HAConfiguration()
        ha.mode = .hotHot
        ha.partitions = 4
        ha.election = HotWarmTests.sqliteElection(in: dir.path).0
        try await HotHotRecord.check(ha, baseDirectory: dir.path, store: store)
        try await HotHotRecord.check(ha, baseDirectory: dir.path, store: store)  // the same again: accepted
        #expect(try await store.setting("election", proposing: nil) == "sqlite \(dir.path)/election.sqlite default")

        var other = ha
        other.election?.election = "other"
        let elsewhere = await #expect(throws: ConfigurationError.self) { try await HotHotRecord.check(other, baseDirectory: dir.path, store: store) }
        #expect(elsewhere?.description.contains("ha.election names the election sqlite \(dir.path)/election.sqlite other, but the node's other "
                                                + "processes stand in sqlite \(dir.path)/election.sqlite default") == true, "\(String(describing: elsewhere))")
        other = ha
        other.election?.sqlite = "elsewhere.sqlite"
        await #expect(throws: ConfigurationError.self) { try await HotHotRecord.check(other, baseDirectory: dir.path, store: store) }
        for mode in [HAConfiguration.Mode.single, .hotWarm] {
            var another = HAConfiguration()
            another.mode = mode
            let refused = await #expect(throws: ConfigurationError.self) { try await HotHotRecord.check(another, baseDirectory: dir.path, store: store) }
            #expect(refused?.description.contains("the node database is a hot-hot node's (its flows split into 4 partitions)") == true)
        }
        // A database no hot-hot process used takes any mode.
        try await HotHotRecord.check(HAConfiguration(), baseDirectory: dir.path, store: try SQLiteNodeDatabase(path: dir.path + "/fresh.sqlite").flows)
    }

    /// Starts go to the partitions a process serves in turn, each as often as the others. (They
    /// went round all the partitions, the served one after an unserved one taking its turn: with
    /// 3 of 6 served, 7 of 9 starts went to one.)
    @Test func startsGoToTheServedPartitionsInTurn() async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteNodeDatabase(path: dir.path + "/node.sqlite").flows
        let engines = FlowEngines(partitions: FlowPartitions(count: 6))
        var served: [ObjectIdentifier: Int] = [:]
        for k in [1, 2, 5] {
            let engine = FlowEngine(store: store, registry: FlowRegistry(), services: FlowServices(), logger: quietLogger)
            engines.partitions[k].set(.active(engine))
            served[ObjectIdentifier(engine)] = k
        }
        var chosen: [Int: Int] = [:]
        for _ in 0..<9 { chosen[served[ObjectIdentifier(try engines.forStart())]!, default: 0] += 1 }
        #expect(chosen == [1: 3, 2: 3, 5: 3])
    }

    /// An election's identity names where it lives without credentials, the same from every process.
    @Test func anElectionsIdentityIsTheSameFromEveryProcess() {
        var zookeeper = ElectionSettings()
        zookeeper.zookeeper = "zk2:2181, zk1:2181,zk3:2181"
        zookeeper.election = "node"
        #expect(zookeeper.identity == "zookeeper zk1:2181,zk2:2181,zk3:2181 node")
        var postgres = ElectionSettings()
        postgres.postgres = "postgres://node_a:secret@db.example:5433/ledger"
        #expect(postgres.identity == "postgres db.example:5433/ledger default")
        postgres.postgres = "postgres://node_b@db.example/ledger"
        #expect(postgres.identity == "postgres db.example:5432/ledger default")
    }

    /// Roles are a hot-hot process's: at least one, known names only, p2p in a network; the queue's
    /// poll interval within bounds.
    @Test func rolesAreCheckedAtStartUp() throws {
        var configuration = NodeConfiguration()
        configuration.ha.roles = [.rpc]
        #expect(configuration.problems.contains("ha.roles is for ha.mode hot-hot: remove it, or set ha.mode hot-hot"))
        configuration.ha.mode = .hotHot
        configuration.ha.roles = []
        #expect(configuration.problems.contains("ha.roles must name at least one role: rpc, flow or p2p"))
        // A P2P worker needs a network to take messages from; it needs no flow role (it queues its responders).
        configuration.ha.roles = [.p2p]
        #expect(configuration.problems.contains("ha.roles names p2p, which takes peers' messages: it needs a network section"))
        #expect(!configuration.problems.contains { $0.hasPrefix("ha.roles:") })
        configuration.ha.roles = [.rpc]
        #expect(!configuration.problems.contains { $0.hasPrefix("ha.roles") })
        configuration.ha.startQueuePollMillis = 5
        #expect(configuration.problems.contains("ha.startQueuePollMillis must be 10 to 60000, not 5"))
        configuration.ha.startQueuePollMillis = 100
        configuration.ha.mode = .hotWarm
        configuration.ha.roles = nil
        #expect(configuration.problems.contains("ha.startQueuePollMillis is for ha.mode hot-hot: remove it, or set ha.mode hot-hot"))
        var notary = NotaryConfiguration()
        notary.ha.roles = [.rpc]
        notary.ha.startQueuePollMillis = 100
        #expect(notary.problems.contains("ha.roles is for a hot-hot node: remove it") && notary.problems.contains("ha.startQueuePollMillis is for a hot-hot node: remove it"),
                "\(notary.problems)")
        // A role the file names that does not exist is refused as the file is read.
        #expect(throws: (any Error).self) { try JSONDecoder().decode(HAConfiguration.self, from: Data(#"{"mode": "hot-hot", "roles": ["rpc", "gateway"]}"#.utf8)) }
        // So is a role named twice (it was taken once, without a word).
        #expect(throws: (any Error).self) { try JSONDecoder().decode(HAConfiguration.self, from: Data(#"{"mode": "hot-hot", "roles": ["rpc", "rpc"]}"#.utf8)) }
        // The bus's subject made of an election name that no subject can hold ("ab." gave hawser.ab..events).
        var subjectless = NodeConfiguration()
        subjectless.ha.mode = .hotHot
        subjectless.ha.bus = BusSettings(servers: ["nats://127.0.0.1:4222"])
        subjectless.ha.election = ElectionSettings()
        subjectless.ha.election?.election = "ab."
        #expect(subjectless.problems.contains { $0.hasPrefix("ha.bus.subject: the default, hawser.<ha.election.election>.events, is no NATS subject") },
                "\(subjectless.problems)")
        // Written and read back alike.
        var written = HAConfiguration()
        written.mode = .hotHot
        written.roles = [.flow, .rpc]
        written.startQueuePollMillis = 100
        #expect(try JSONDecoder().decode(HAConfiguration.self, from: JSONEncoder().encode(written)) == written)
    }

    @Test func aHotHotNodeNeedsWhatHotWarmNeedsValidPartitionsAndAValidBus() throws {
        var configuration = NodeConfiguration()
        configuration.ha.mode = .hotHot
        let problems = configuration.problems.joined(separator: "\n")
        for expected in ["ha.mode hot-hot needs ha.id", "ha.mode hot-hot needs ha.advertise", "ha.mode hot-hot needs ha.election",
                         "ha.mode hot-hot needs notary.kind remote"] {
            #expect(problems.contains(expected), "\(problems)")
        }
        configuration.ha.partitions = 0
        #expect(configuration.problems.contains("ha.partitions must be 1 to 256, not 0"))
        configuration.ha.mode = .hotWarm
        #expect(configuration.problems.contains { $0.hasPrefix("ha.partitions (0) is for ha.mode hot-hot") })
        var notary = NotaryConfiguration()
        notary.ha.mode = .hotHot
        #expect(notary.problems.contains("ha.mode hot-hot is for nodes: a notary is single, hot-warm or hot-cold"))
        // A notary's partitions are refused without sending it to hot-hot.
        notary.ha.mode = .single
        notary.ha.partitions = 4
        #expect(notary.problems.contains("ha.partitions (4) is for a hot-hot node's flows: remove it"), "\(notary.problems)")
        notary.ha.partitions = nil
        notary.ha.bus = BusSettings(servers: ["nats://127.0.0.1:4222"])
        #expect(notary.problems.contains("ha.bus is for a hot-hot node: remove it"), "\(notary.problems)")

        // The bus: only in hot-hot, with at least one valid server, a subject without wildcards.
        configuration.ha.partitions = nil
        configuration.ha.bus = BusSettings(servers: ["nats://127.0.0.1:4222"])
        #expect(configuration.problems.contains("ha.bus is for ha.mode hot-hot: remove it, or set ha.mode hot-hot"))
        configuration.ha.mode = .hotHot
        // Without a network the bus carries the news of queued starts (an RPC worker's) alone.
        #expect(!configuration.problems.contains { $0.hasPrefix("ha.bus") }, "\(configuration.problems)")
        for (bus, problem) in [
            (BusSettings(), "ha.bus.servers must name at least one NATS server (nats://host:port)"),
            (BusSettings(servers: ["http://127.0.0.1:4222"]), #"ha.bus.servers[0] "http://127.0.0.1:4222" must be a NATS server URL: nats://host:port, tls://host:port or host:port"#),
            (BusSettings(servers: ["nats://127.0.0.1:4222"], subject: "hawser.*"), #"ha.bus.subject "hawser.*" must be 1-200 characters: tokens of A-Z, a-z, 0-9, '_', '-' separated by single dots"#),
            (BusSettings(servers: ["nats://127.0.0.1:4222"], subject: "hawser..bob"), #"ha.bus.subject "hawser..bob" must be 1-200 characters: tokens of A-Z, a-z, 0-9, '_', '-' separated by single dots"#),
        ] {
            configuration.ha.bus = bus
            #expect(configuration.problems.contains(problem), "\(configuration.problems)")
        }
        #expect(BusSettings(subject: "ledger.bob-node_1").eventsSubject(election: "x") == "ledger.bob-node_1.events")
        #expect(BusSettings().eventsSubject(election: "bob") == "hawser.bob.events")
    }
}
