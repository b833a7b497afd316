import Embedded
import Flows
import Foundation
import HawserClient
import HawserCore
import HawserNode
import HawserTestSupport
import Testing
import Vault

/// A node process against flows that could take it down: amounts whose sum passes Int64, a flow
/// whose replay at start-up took the process down, and an operator's way out while it is stopped.
@Suite(.serialized) struct NodePoisonTests {
    /// A node directory with a running node, and a client that gives up soon if the node dies.
    final class RunningNode {
        let dir: TemporaryDirectory
        var node: HawserProcess
        let client: NodeClient

        init(dir: consuming TemporaryDirectory, node: HawserProcess, client: NodeClient) {
            self.dir = dir
            self.node = node
            self.client = client
        }
        var config: String { dir.path + "/node.json" }
        var databasePath: String { dir.path + "/data/node.sqlite" }

        static func start() async throws -> RunningNode {
            let dir = try TemporaryDirectory()
            try writeNodeFiles(in: dir.path)
            let (node, port) = try await HawserProcess.node(config: dir.path + "/node.json")
            // Restarts listen on the same port.
            var configuration = try NodeConfiguration.load(dir.path + "/node.json")
            configuration.listen.port = port
            try configuration.save(dir.path + "/node.json")
            let client = NodeClient(urls: ["http://127.0.0.1:\(port)"], username: "ops", password: "secret",
                                    retryPolicy: RetryPolicy(maxAttempts: 20, baseBackoff: .milliseconds(50), maxBackoff: .milliseconds(200),
                                                             attemptTimeout: .seconds(20), deadline: .seconds(30)))
            return RunningNode(dir: dir, node: node, client: client)
        }

        func issue(_ amount: Int64, to owner: String) async throws -> NodeFlow {
            try await client.run("IssueTokens", arguments: Array(#"{"owner":"\#(owner)","amount":\#(amount)}"#.utf8))
        }

        func restart() async throws {
            (node, _) = try await HawserProcess.node(config: config)
        }
    }

    @Test(.timeLimit(.minutes(2))) func aMoveWhoseInputsPassInt64NeitherCrashesTheNodeNorLosesTokens() async throws {
        let running = try await RunningNode.start()
        for _ in 0..<2 { #expect(try await running.issue(4_611_686_018_427_387_904, to: "O=Alice").status == "completed") }
        // Without waiting: the flow runs on after the answer, where a trap would take the node down.
        let move = try await running.client.startFlow(
            "MoveTokens", arguments: Array(#"{"owner":"O=Alice","newOwner":"O=Bob","amount":6917529027641081856}"#.utf8))
        let ended = try await running.client.waitForEnd(move.id)
        #expect(ended.status == "completed", "\(ended.error ?? "")")
        #expect(running.node.isRunning)
        _ = await running.node.terminate()
        let balances = try await SQLiteNodeDatabase(path: running.databasePath).vault.balances(type: "token", owner: nil)
        #expect(balances.map(\.owner) == ["O=Alice", "O=Bob"])
        #expect(balances.map(\.amount) == [2_305_843_009_213_693_952, 6_917_529_027_641_081_856])
        try await running.client.shutdown()
    }

    /// A MoveTokens flow written into the stopped node's database as running, as a crash leaves one.
    func runningFlow(_ database: SQLiteNodeDatabase, marked: Bool) async throws -> FlowID {
        let now = SystemFlowClock().now()
        let record = FlowRecord(id: .next(), clientRequestId: nil, flowName: "MoveTokens",
                                arguments: Array(#"{"amount":1,"newOwner":"O=Bob","owner":"O=Alice"}"#.utf8),
                                createdAt: now, updatedAt: now)
        _ = try await database.flows.commit([.start(record)] + (marked ? [.replayMarker(record.id, true)] : []))
        return record.id
    }

    @Test(.timeLimit(.minutes(2))) func aFlowWhoseReplayTookTheNodeDownIsParkedWithItsReason() async throws {
        let running = try await RunningNode.start()
        _ = await running.node.terminate()
        let id = try await runningFlow(try SQLiteNodeDatabase(path: running.databasePath), marked: true)
        try await running.restart()
        // The engine decides about unfinished flows while the API already answers.
        try await eventually("the flow is decided") { try await running.client.flow(id.rawValue).status != "running" }
        let flow = try await running.client.flow(id.rawValue)
        #expect(flow.status == "hospitalised")
        #expect(flow.retryAt == nil)
        #expect(flow.error == StartupReplay.parkedReason)
        try await running.client.shutdown()
    }

    /// The offline tool would kill a flow under a running node, which would go on running it: it
    /// takes the data directory's lock, and a running node holds it. (Before: it wrote anyway.)
    @Test(.timeLimit(.minutes(2))) func theOfflineToolIsRefusedWhileTheNodeRuns() async throws {
        let running = try await RunningNode.start()
        let issued = try await running.issue(5, to: "O=Alice")
        let refused = try await HawserProcess.run(["flow", "offline", "kill", issued.id, "--config", running.config])
        #expect(refused.status != 0)
        #expect(refused.output.contains("is in use by process") && refused.output.contains("hawser node run"), "\(refused.output)")
        #expect(try await running.client.flow(issued.id).status == "completed")
        try await running.client.shutdown()
    }

    @Test(.timeLimit(.minutes(2))) func anOperatorKillsOrParksAFlowWhileTheNodeIsStopped() async throws {
        let running = try await RunningNode.start()
        let issued = try await running.issue(5, to: "O=Alice")
        _ = await running.node.terminate()
        let database = try SQLiteNodeDatabase(path: running.databasePath)
        let (killed, parked) = (try await runningFlow(database, marked: true), try await runningFlow(database, marked: false))
        let state = try #require(try await database.vault.query(VaultQuery(type: "token")).first)
        try await database.vault.reserve([state.ref], for: killed.rawValue)

        let kill = try await HawserProcess.run(["flow", "offline", "kill", killed.rawValue, "--config", running.config])
        #expect(kill.status == 0, "\(kill.output)")
        #expect(kill.output.contains(#""status":"killed""#), "\(kill.output)")
        let park = try await HawserProcess.run(["flow", "offline", "park", parked.rawValue, "--config", running.config])
        #expect(park.output.contains(#""status":"hospitalised""#), "\(park.output)")
        let ended = try await HawserProcess.run(["flow", "offline", "kill", issued.id, "--config", running.config])
        #expect(ended.status != 0)
        #expect(ended.output.contains("has already ended (completed)"), "\(ended.output)")
        #expect(try await database.vault.query(VaultQuery(type: "token")).allSatisfy { $0.lockedBy == nil })
        #expect(try await database.flows.replayMarkers().isEmpty)

        try await running.restart()
        #expect(try await running.client.flow(killed.rawValue).status == "killed")
        let waiting = try await running.client.flow(parked.rawValue)
        #expect(waiting.status == "hospitalised")
        #expect(waiting.error == "parked by an operator while the node was stopped")
        try await running.client.shutdown()
    }
}
