import ArgumentParser
import Foundation
import HawserClient
import HawserCore
import HawserNode
import Logging
import Sim

/// `hawser bench flows`: token-sample flows on an all-in-one node, driven over the RPC API by
/// concurrent clients (`FlowLoad`). The node runs
/// in this process, or is a running one (`--node`), which may be killed and restarted meanwhile:
/// the clients retry through its absence, and the client request ids keep each flow one flow.
/// With `--history FILE` every start and every end the clients saw is written as the history of
/// docs/history.md and checked at the end, as `hawser check history` does.
struct FlowBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows",
        abstract: "Measure completed flows per second and latency on an all-in-one node (use a release build).")

    enum Workload: String, ExpressibleByArgument, CaseIterable {
        /// IssueTokens of 1 to O=Alice: no flow waits for another.
        case issue
        /// MoveTokens of 1 to 9 between O=Alice and O=Bob, both ways: the flows compete for the
        /// same states (the selection's soft locks), as a busy node's payments do.
        case move
    }

    @Option(help: "Concurrent clients.") var clients = 64
    @Option(help: "Flows to run (timed).") var flows = 5_000
    @Option(help: "Untimed flows run first.") var warmup = 500
    @Option(help: "Start flows at this many per second (open loop; latency counts from each flow's scheduled start). Default: each client starts its next flow as soon as the last one ends.")
    var rate: Double?
    @Option(help: "The flows to run: issue or move.") var workload = Workload.issue
    @Option(help: "For --workload move: token states of 1,000,000 issued to each party first (untimed).")
    var seedStates = 64
    @Option(help: "Print the flows that ended in each interval of this many seconds (0: none).")
    var reportEvery = 0
    @Option(help: "The node's directory; a temporary one if omitted.") var dir: String?
    @Option(help: "The in-process node's database: sqlite (in its directory) or postgres (--database-url).")
    var store = NodeDatabaseConfiguration.Kind.sqlite
    @Option(help: "For --store postgres: postgres://user@host:port/database (password from $\(NodeDatabaseConfiguration.passwordVariable)).")
    var databaseURL: String?
    @Option(name: .customLong("node"), help: "Drive this running node instead of one in this process; repeated, the callers are spread over the URLs, each failing over to the others (a hot-hot node's workers, or a hot-warm pair).")
    var nodes: [String] = []
    @Option(help: "RPC user of --node.") var user = "bench"
    @Option(help: "RPC password of --node (default: $HAWSER_PASSWORD).") var password: String?
    @Option(help: "Record every flow the clients start (seeding and warm-up included) and its end in this file, as the JSON-lines history of docs/history.md, then check it as `hawser check history` does.")
    var history: String?

    func validate() throws {
        guard clients > 0, flows > 0, warmup >= 0, seedStates > 0, reportEvery >= 0 else {
            throw ValidationError("--clients, --flows and --seed-states must be positive")
        }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
        guard history.map({ !$0.isEmpty }) ?? true else { throw ValidationError("--history needs a file path") }
        if (store == .postgres) != (databaseURL != nil) { throw ValidationError("--store postgres and --database-url go together") }
        if !nodes.isEmpty, store != .sqlite { throw ValidationError("--store chooses the in-process node's database; a --node has its own") }
        if !nodes.isEmpty, password ?? ProcessInfo.processInfo.environment["HAWSER_PASSWORD"] == nil {
            throw ValidationError("--node needs --password or HAWSER_PASSWORD")
        }
    }

    func run() async throws {
        // Made first, so that a path that cannot be written fails the run before any load.
        let recorder: HistoryWriter?
        do { recorder = try history.map { try HistoryWriter(path: $0) } } catch { throw CLIError("\(error)") }
        try await run(recorder)
        try FlowLoad.check(recorder)
    }

    private func run(_ history: HistoryWriter?) async throws {
        if !nodes.isEmpty {
            // A node that may be killed and restarted: retry for long, a flow at a time. Client i
            // tries the URLs from the i-th on.
            let clients = nodes.indices.map { i in
                NodeClient(urls: Array(nodes[i...] + nodes[..<i]), username: user,
                           password: password ?? ProcessInfo.processInfo.environment["HAWSER_PASSWORD"] ?? "",
                           retryPolicy: RetryPolicy(maxAttempts: 10_000, baseBackoff: .milliseconds(50), maxBackoff: .seconds(1),
                                                    attemptTimeout: .seconds(30), deadline: .seconds(600)))
            }
            do {
                try await measure(clients, history)
            } catch {
                for client in clients { try? await client.shutdown() }
                throw error
            }
            for client in clients { try await client.shutdown() }
            return
        }
        let directory = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("hawser-flow-bench-\(UUID().uuidString)").path
        // A directory of our own making is removed afterwards; one the caller named is kept.
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: directory) } }
        let config = directory + "/node.json"
        if !FileManager.default.fileExists(atPath: config) {
            _ = try Node.initialise(directory: directory, port: 0, parties: ["O=Alice", "O=Bob"], username: "bench", password: "bench")
        }
        var logger = Logger(label: "hawser.bench")
        logger.logLevel = .error
        var configuration = try NodeConfiguration.load(config)
        configuration.database.kind = store
        configuration.database.url = databaseURL
        try await InProcessServer.with(logger: logger, make: { onListening in
            try await Node.application(configuration: configuration, baseDirectory: directory, logger: logger, onListening: onListening).app
        }) { port in
            let client = NodeClient(urls: ["http://127.0.0.1:\(port)"], username: "bench", password: "bench")
            try await measure([client], history)
            try await client.shutdown()
        }
    }

    private func measure(_ targets: [NodeClient], _ history: HistoryWriter?) async throws {
        let client = targets[0]
        let run = randomUUID().uuidString.lowercased().prefix(8)
        let load = FlowLoad(clients: clients, rate: rate, history: history)
        let (workload, flow) = (workload, self.flow)
        // An issue never fails; a move may (its owner's tokens all reserved by other moves).
        let accept: @Sendable (NodeFlow) throws -> Void = { final in
            if workload == .issue, final.status != "completed" { throw CLIError("flow \(final.id) ended \(final.status): \(final.error ?? "")") }
        }
        if workload == .move { try await load.seed(client, parties: ["O=Alice", "O=Bob"], count: seedStates * 2, prefix: "\(run)") }
        if warmup > 0 { _ = try await load.drive(targets, count: warmup, prefix: "\(run)-warmup", flow: flow, accept: accept) }
        let start = ContinuousClock.now
        let ended = try await load.drive(targets, count: flows, prefix: "\(run)-timed", flow: flow, accept: accept)
        let elapsed = FlowLoad.seconds(ContinuousClock.now - start)
        print("store=\(nodes.isEmpty ? store.rawValue : "node") workload=\(workload.rawValue) flows=\(flows) clients=\(clients) "
              + "rate=\(rate.map { String(format: "%.0f", $0) } ?? "closed-loop") " + FlowLoad.summary(ended, elapsed: elapsed))
        if reportEvery > 0 { FlowLoad.intervals(ended, every: reportEvery, elapsed: elapsed).forEach { print($0) } }
    }

    private func flow(_ i: Int) -> (String, String) {
        switch workload {
        case .issue: return ("IssueTokens", #"{"owner":"O=Alice","amount":1}"#)
        case .move:
            let (from, to) = i % 2 == 0 ? ("O=Alice", "O=Bob") : ("O=Bob", "O=Alice")
            return ("MoveTokens", #"{"owner":"\#(from)","newOwner":"\#(to)","amount":\#(1 + i % 9)}"#)
        }
    }
}

extension NodeDatabaseConfiguration.Kind: ExpressibleByArgument {}
