import AsyncHTTPClient
import Embedded
import Flows
import Foundation
import HawserClient
import HawserCore
@testable import HawserNode
import HawserTestSupport
import NIOCore
import Testing

/// A hot-hot node split by roles (docs/node.md "Roles"): an RPC worker (`ha.roles ["rpc"]`) that
/// runs no flow and a flow worker (`["flow"]`) that takes no client's start, on one SQLite node
/// database with SQLite leases and a remote notary. The RPC worker's starts are queued for the
/// partitions' owner and answered from the database (a running flow's events, kill and resume
/// are sent on to the flow worker, whom the RPC worker names); the flow worker is killed -9 with
/// starts queued and more are queued while no flow worker runs; a new one runs every flow, each once.
@Suite(.serialized) struct WorkerRolesTests {
    let hotWarm = HotWarmTests()
    let hotHot = HotHotTests()

    @Test(.timeLimit(.minutes(4))) func anRPCWorkersStartsRunOnFlowWorkersEachOnceThroughAKill() async throws {
        let dir = try TemporaryDirectory()
        var (election, _) = HotWarmTests.sqliteElection(in: dir.path)
        election.holdDownMs = 500
        let notary = try await StandaloneNotary.start()
        let pair = try HotWarmTests.Pair(root: dir.path, notary: notary.url, election: election, electionOptions: [],
                                         mode: .hotHot, partitions: HotHotTests.partitions)
        // A runs flows, B is the RPC worker; C (made from A's file) is the flow worker that replaces A.
        var flowWorker = try NodeConfiguration.load(pair.config("A"))
        flowWorker.ha.roles = [.flow]
        try flowWorker.save(pair.config("A"))
        let port = try FreePorts.take(1)[0]
        flowWorker.ha.id = "C"
        flowWorker.listen.port = port
        flowWorker.ha.advertise = ["http://127.0.0.1:\(port)"]
        try flowWorker.save(pair.config("C"))
        var rpcWorker = try NodeConfiguration.load(pair.config("B"))
        rpcWorker.ha.roles = [.rpc]
        try rpcWorker.save(pair.config("B"))

        var a: HawserProcess? = try await pair.start("A")
        try await hotWarm.awaitReady(pair.url("A"), "ready")
        let b = try await pair.start("B")
        try await hotWarm.awaitReady(pair.url("B"), "ready")

        // The flow worker sends clients' starts and reads to an RPC worker.
        let start = #"{"flow":"IssueTokens","arguments":{"owner":"O=Alice","amount":10}}"#
        let refused = try await hotHot.post(pair.url("A") + "/v1/flows", start)
        #expect(refused.status == 503 && refused.body.contains(#""code":"standby""#) && refused.body.contains("rpc role"), "\(refused)")
        #expect(refused.retryAfter == "1", "a standby answer says when to try again, as every one does")
        // Without credentials too, as a standby answers: it was 401, and the client was not sent on.
        let anonymous = try await hotHot.post(pair.url("A") + "/v1/flows", start, authorised: false)
        #expect(anonymous.status == 503 && anonymous.body.contains("rpc role"), "\(anonymous)")
        #expect(try await hotWarm.unfinished(pair.root) == 0, "a refused start changes nothing")

        let retries = RetryPolicy(maxAttempts: 1_000, baseBackoff: .milliseconds(20), maxBackoff: .milliseconds(200),
                                  attemptTimeout: .seconds(10), deadline: .seconds(90))
        let client = NodeClient(urls: [pair.url("B")], username: "ops", password: "secret", retryPolicy: retries)
        do {
            // Starts that wait: queued by B, run by A, answered by B from the database.
            for i in 0..<10 {
                let seed = try await client.run("IssueTokens", arguments: Array(#"{"owner":"O=Alice","amount":10}"#.utf8),
                                                clientRequestId: "seed-\(i)")
                #expect(seed.status == "completed", "seed \(i): \(seed.status) \(seed.error ?? "")")
            }
            // A repeated start names its flow and queues nothing.
            let repeated = try await hotHot.post(pair.url("B") + "/v1/flows",
                                                 #"{"flow":"IssueTokens","arguments":{"owner":"O=Alice","amount":10},"clientRequestId":"seed-0"}"#)
            #expect(repeated.status == 200 && repeated.body.contains(#""status":"completed""#), "\(repeated)")

            // kill -9 of the flow worker with starts queued and running (the notary is down), then
            // more starts while no flow worker runs: the new one (C) runs them all.
            notary.kill()
            var ids = [String: String]()
            for i in 0..<8 { ids["load-\(i)"] = try await hotWarm.start(i, client).id }
            let doomed = try await client.startFlow("IssueTokens", arguments: Array(#"{"owner":"O=Bob","amount":5}"#.utf8),
                                                    clientRequestId: "killed-through-the-rpc-worker")
            try await eventually("the flow worker took every queued start") {
                try await SQLiteNodeDatabase(path: pair.root + "/data/node.sqlite").flows.queued(in: Array(0..<HotHotTests.partitions), limit: 10).isEmpty
            }
            // A running flow's events, kill and resume are the flow worker's to serve: the RPC
            // worker names it (read from the partition's election), and a client follows.
            let events = try await get(pair.url("B") + "/v1/flows/\(ids["load-0"]!)/events")
            struct Answer: Decodable { struct Detail: Decodable { var code: String; var active: String? }; var error: Detail }
            let answer = try? JSONDecoder().decode(Answer.self, from: Data(events.body.utf8))
            #expect(events.status == 503 && answer?.error.code == "standby" && answer?.error.active == pair.url("A"), "\(events)")
            // The flow worker refuses to kill a flow that has asked the notary (down here: the
            // flow retries): its transaction may yet be committed. It completes once the notary is back.
            do {
                _ = try await client.kill(doomed.id)
                Issue.record("killed a flow that had asked the notary")
            } catch {
                #expect("\(error)".contains("flow_notarising"), "\(error)")
            }
            a?.kill()
            a = nil
            for i in 8..<12 { ids["load-\(i)"] = try await hotWarm.start(i, client).id }
            #expect(try await hotWarm.unfinished(pair.root) == 13, "the 12 load flows and the one not killed")
            let c = try await pair.start("C")
            try await hotWarm.awaitReady("http://127.0.0.1:\(port)", "ready")
            try await notary.restart()
            try await hotWarm.expectEveryFlowCompletedOnce(ids.merging(["killed-through-the-rpc-worker": doomed.id]) { a, _ in a }, client)
            #expect(await c.terminate() == 0)
            #expect(await b.terminate() == 0)
            try await hotWarm.checkLedger(pair.root, notary, loads: ids.count, issuedToBob: [5])
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    /// On the bus an RPC worker names each start it queued, and the flow worker runs it at once:
    /// here the flow worker reads the queue only once a minute, so a start the bus did not name
    /// would still be running when the start's 5 s wait ends.
    @Test(.timeLimit(.minutes(2))) func onTheBusAnRPCWorkersStartsRunAtOnce() async throws {
        let nats = try await NATSCluster.start(size: 1, jetStream: false)
        defer { nats.stop() }
        let dir = try TemporaryDirectory()
        var (election, _) = HotWarmTests.sqliteElection(in: dir.path)
        election.holdDownMs = 500
        let notary = try await StandaloneNotary.start()
        defer { notary.kill() }
        let pair = try HotWarmTests.Pair(root: dir.path, notary: notary.url, election: election, electionOptions: [],
                                         mode: .hotHot, partitions: HotHotTests.partitions)
        for (id, roles) in [("A", Set([HAConfiguration.Role.flow])), ("B", [.rpc])] {
            var configuration = try NodeConfiguration.load(pair.config(id))
            configuration.ha.roles = roles
            configuration.ha.bus = BusSettings(servers: nats.urls)
            configuration.ha.startQueuePollMillis = 60_000
            try configuration.save(pair.config(id))
        }
        let a = try await pair.start("A")
        try await hotWarm.awaitReady(pair.url("A"), "ready")
        let b = try await pair.start("B")
        try await hotWarm.awaitReady(pair.url("B"), "ready")
        // Both on the bus before the first start (an event sent earlier is lost, and left to the scan).
        for id in ["A", "B"] {
            try await eventually("\(id) on the bus") {
                try await hotWarm.status(pair.url(id) + "/metrics").body.contains("hawser_bus_connected 1")
            }
        }
        for i in 0..<5 {
            let answer = try await hotHot.post(pair.url("B") + "/v1/flows?wait=5",
                                               #"{"flow":"IssueTokens","arguments":{"owner":"O=Alice","amount":10},"clientRequestId":"bus-\#(i)"}"#)
            #expect(answer.status == 201 && answer.body.contains(#""status":"completed""#), "start \(i): \(answer)")
        }
        #expect(await b.terminate() == 0)
        #expect(await a.terminate() == 0)
    }

    /// GETs `url` as the pair's RPC user.
    func get(_ url: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Basic " + Data("ops:secret".utf8).base64EncodedString())
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }
}
