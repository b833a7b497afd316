import Embedded
import Flows
import Foundation
import HawserClient
import HawserCore
import HawserNode
import HawserTestSupport
import Synchronization
import Testing

/// kill -9 the node while 200 sample flows run, several times, restarting it each time: every
/// flow ends exactly once and completed, clients waiting on a flow get its result through the kills, token totals are conserved, every transaction the
/// notary committed is one a flow completed with, and no state is consumed twice.
@Suite(.serialized) struct NodeCrashTests {
    /// Counts started flows and lets the test await a count.
    final class Started: Sendable {
        private let state = Mutex<(count: Int, waiters: [(Int, CheckedContinuation<Void, Never>)])>((0, []))

        func increment() {
            let ready = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                s.count += 1
                let count = s.count
                let ready = s.waiters.filter { $0.0 <= count }.map(\.1)
                s.waiters.removeAll { $0.0 <= count }
                return ready
            }
            ready.forEach { $0.resume() }
        }

        func waitUntil(_ count: Int) async {
            await withCheckedContinuation { continuation in
                let now = state.withLock { s -> Bool in
                    if s.count >= count { return true }
                    s.waiters.append((count, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        }
    }

    // The limit catches a hang: under the full suite on a slow day the test took 155-171 s, once more than 180.
    @Test(.timeLimit(.minutes(5))) func flowsSurviveKillNineExactlyOnce() async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let config = dir.path + "/node.json"
        var (node, port) = try await HawserProcess.node(config: config)
        // Restarts listen on the same port, so the client's one URL stays right.
        var configuration = try NodeConfiguration.load(config)
        configuration.listen.port = port
        try configuration.save(config)

        let client = NodeClient(urls: ["http://127.0.0.1:\(port)"], username: "ops", password: "secret",
                                retryPolicy: RetryPolicy(maxAttempts: 200, baseBackoff: .milliseconds(20),
                                                         maxBackoff: .milliseconds(200), attemptTimeout: .seconds(20),
                                                         deadline: .seconds(120)))
        // Alice's starting tokens: 50 states of 10.
        for i in 0..<50 {
            let flow = try await client.startFlow("IssueTokens", arguments: Array("{\"owner\":\"O=Alice\",\"amount\":10}".utf8),
                                                  clientRequestId: "seed-\(i)")
            #expect(try await client.watch(flow.id).status == "completed")
        }

        // 200 flows from 8 workers: issues of 7 to Bob and moves of 2 from Alice to Bob.
        let started = Started()
        var ids = [String: String]()
        var interrupted = 0  // flows that were running when the node was killed
        try await withThrowingTaskGroup(of: [String: String].self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var mine = [String: String]()
                    for i in stride(from: worker, to: 200, by: 8) {
                        let (flow, arguments) = i % 2 == 0
                            ? ("IssueTokens", "{\"owner\":\"O=Bob\",\"amount\":7}")
                            : ("MoveTokens", "{\"owner\":\"O=Alice\",\"newOwner\":\"O=Bob\",\"amount\":2}")
                        // Half the workers start and move on; the others wait for each flow's end in the
                        // same call, re-attaching through the kills by their client request id.
                        let record = worker % 2 == 0
                            ? try await client.startFlow(flow, arguments: Array(arguments.utf8), clientRequestId: "load-\(i)")
                            : try await client.run(flow, arguments: Array(arguments.utf8), clientRequestId: "load-\(i)")
                        if worker % 2 == 1 { #expect(record.status == "completed", "load-\(i): \(record.error ?? "")") }
                        mine["load-\(i)"] = record.id
                        started.increment()
                    }
                    return mine
                }
            }
            // Kill the node at three points of the load, restarting it each time.
            for mark in [30, 90, 150] {
                await started.waitUntil(mark)
                node.kill()
                interrupted += try await SQLiteNodeDatabase(path: dir.path + "/data/node.sqlite").flows
                    .list(FlowQuery(status: .running, limit: 10_000)).count
                (node, _) = try await HawserProcess.node(config: config)
            }
            for try await mine in group { ids.merge(mine) { a, _ in a } }
        }
        node.kill()
        (node, _) = try await HawserProcess.node(config: config)
        #expect(interrupted > 0, "the kills should have interrupted flows in flight")

        var txIds = Set<String>()
        for (key, id) in ids.sorted(by: { $0.key < $1.key }) {
            let flow = try await client.watch(id)
            #expect(flow.status == "completed", "\(key) ended \(flow.status): \(flow.error ?? "")")
            #expect(flow.attempts == 0 || flow.status == "completed")
            if let result = flow.result, let object = try JSONSerialization.jsonObject(with: result) as? [String: Any],
               let txId = object["txId"] as? String {
                #expect(txIds.insert(txId).inserted, "two flows completed with transaction \(txId)")
            }
        }
        #expect(txIds.count == 200)
        // Exactly once: no flow was started twice for one client request id.
        for i in 0..<200 {
            #expect(try await client.flow(clientRequestId: "load-\(i)")?.id == ids["load-\(i)"])
        }
        _ = await node.terminate()
        try await client.shutdown()

        // Totals: Alice 500 - 100 × 2, Bob 100 × 7 + 100 × 2.
        let database = try SQLiteNodeDatabase(path: dir.path + "/data/node.sqlite")
        let states = try await database.vault.query(.init(type: "token", consumption: .all, limit: 100_000))
        var balances = [String: Int64]()
        for state in states where !state.isConsumed {
            let token = try JSONSerialization.jsonObject(with: Data(state.data)) as! [String: Any]
            balances[state.owner, default: 0] += (token["amount"] as! NSNumber).int64Value
        }
        #expect(balances == ["O=Alice": 300, "O=Bob": 900])
        #expect(try await database.flows.list(FlowQuery(limit: 10_000)).count == 250)
        // The notary agrees with the vault: each consumed state was spent by the transaction the
        // vault says, and no unconsumed one was spent (a replay that built a different
        // transaction would have spent states the vault still holds).
        let notary = try SQLiteNotaryStore(path: dir.path + "/data/notary.sqlite")
        for state in states {
            #expect(try await notary.consumer(of: state.ref) == state.consumedBy, "\(state.ref)")
            #expect(try await notary.outcome(of: state.ref.txId) == .committed)
        }
    }
}
