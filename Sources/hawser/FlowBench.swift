import ArgumentParser
import Foundation
import HawserClient
import HawserCore
import HawserNode
import Logging
import Sim
import Synchronization

/// `hawser bench flows`: token-sample flows on an all-in-one node, driven over the RPC API by
/// concurrent clients. Each client starts a flow (with a client request id) and waits for its end
/// in the same call (`NodeClient.run`); latency is from the call to the ended flow. The node runs
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
    @Option(name: .customLong("node"), help: "Drive this running node (repeatable) instead of one in this process.")
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
        guard let recorder else { return }
        do { try recorder.close() } catch { throw CLIError("\(error)") }
        let (violations, summary) = try CheckCommand.HistoryCheck.check(recorder.path, allowUnfinished: false)
        print("history \(recorder.path): \(summary)")
        for violation in violations { print("HISTORY VIOLATION \(violation)") }
        if !violations.isEmpty { throw ExitCode(1) }
    }

    private func run(_ history: HistoryWriter?) async throws {
        if !nodes.isEmpty {
            // A node that may be killed and restarted: retry for long, a flow at a time.
            let client = NodeClient(urls: nodes, username: user,
                                    password: password ?? ProcessInfo.processInfo.environment["HAWSER_PASSWORD"] ?? "",
                                    retryPolicy: RetryPolicy(maxAttempts: 10_000, baseBackoff: .milliseconds(50), maxBackoff: .seconds(1),
                                                             attemptTimeout: .seconds(30), deadline: .seconds(600)))
            do {
                try await measure(client, history)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
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
            try await measure(client, history)
            try await client.shutdown()
        }
    }

    private func measure(_ client: NodeClient, _ history: HistoryWriter?) async throws {
        let run = randomUUID().uuidString.lowercased().prefix(8)
        if workload == .move { try await seed(client, run: "\(run)", history) }
        if warmup > 0 { _ = try await drive(client, count: warmup, prefix: "\(run)-warmup", history) }
        let start = ContinuousClock.now
        let ended = try await drive(client, count: flows, prefix: "\(run)-timed", history)
        let elapsed = Self.seconds(ContinuousClock.now - start)
        let latencies = ended.map(\.latency).sorted()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        let statuses = Dictionary(grouping: ended, by: \.status).mapValues(\.count).sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        print(String(format: "store=%@ workload=%@ flows=%d clients=%d rate=%@ seconds=%.2f flows_per_second=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f %@",
                     nodes.isEmpty ? store.rawValue : "node", workload.rawValue, flows, clients, rate.map { String(format: "%.0f", $0) } ?? "closed-loop", elapsed,
                     Double(flows) / elapsed, percentile(0.5), percentile(0.9), percentile(0.99), statuses))
        if reportEvery > 0 {
            // The last interval ends with the run, so its rate is over the time it lasted.
            let windows = Dictionary(grouping: ended) { Int($0.at) / reportEvery }.mapValues(\.count)
            for window in 0...(windows.keys.max() ?? 0) {
                let count = windows[window] ?? 0
                let from = Double(window * reportEvery), until = min(Double((window + 1) * reportEvery), elapsed)
                print(String(format: "interval_s=%.0f-%.1f ended=%d flows_per_second=%.1f", from, until, count,
                             Double(count) / max(until - from, 0.001)))
            }
        }
    }

    /// Issues `seedStates` states to each party, 16 at a time.
    private func seed(_ client: NodeClient, run: String, _ history: HistoryWriter?) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    for i in stride(from: worker, to: seedStates * 2, by: 16) {
                        let owner = i % 2 == 0 ? "O=Alice" : "O=Bob"
                        let flow = try await Self.run(client, "IssueTokens", #"{"owner":"\#(owner)","amount":1000000}"#,
                                                      clientRequestId: "\(run)-seed-\(i)", by: "seed\(worker)", history)
                        guard flow.status == "completed" else { throw CLIError("seed flow \(flow.id) ended \(flow.status): \(flow.error ?? "")") }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private struct Ended: Sendable {
        var status: String
        /// Milliseconds from the call (or from when it was due) to the end.
        var latency: Double
        /// Seconds from the start of the run to the end.
        var at: Double
    }

    /// Runs `count` flows from `clients` concurrent callers. With a rate, flow i is due at i / rate
    /// seconds; a caller waits for the due time, and a flow that starts late (every caller busy)
    /// counts its lateness as latency.
    private func drive(_ client: NodeClient, count: Int, prefix: String, _ history: HistoryWriter?) async throws -> [Ended] {
        let tickets = Tickets()
        let origin = ContinuousClock.now
        return try await withThrowingTaskGroup(of: [Ended].self) { group in
            for caller in 0..<clients {
                group.addTask {
                    var out = [Ended]()
                    while case let i = tickets.next(), i < count {
                        var begin = ContinuousClock.now
                        if let rate {
                            begin = origin + .nanoseconds(Int64(Double(i) / rate * 1e9))
                            try await Task.sleep(until: begin, clock: .continuous)
                        }
                        let (flow, arguments) = self.flow(i)
                        let final = try await Self.run(client, flow, arguments, clientRequestId: "\(prefix)-\(i)", by: "c\(caller)", history)
                        if workload == .issue, final.status != "completed" {
                            throw CLIError("flow \(final.id) ended \(final.status): \(final.error ?? "")")
                        }
                        let now = ContinuousClock.now
                        out.append(Ended(status: final.status, latency: Self.seconds(now - begin) * 1000, at: Self.seconds(now - origin)))
                    }
                    return out
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Runs a flow to its end, recording its start and end in `history` as the caller `name` saw them.
    private static func run(_ client: NodeClient, _ flow: String, _ arguments: String, clientRequestId: String, by name: String,
                            _ history: HistoryWriter?) async throws -> NodeFlow {
        history?.record(HistoryEvent.startInvoke(clientRequestId: clientRequestId).by(client: name))
        let final: NodeFlow
        do { final = try await client.run(flow, arguments: Array(arguments.utf8), clientRequestId: clientRequestId) } catch {
            history?.record(HistoryEvent.startInfo(clientRequestId: clientRequestId, error: "\(error)").by(client: name))
            throw error
        }
        history?.record(HistoryEvent.startOk(clientRequestId: clientRequestId, flowId: final.id).by(client: name))
        // A flow parked in the hospital has not ended (docs/history.md): no result for it.
        if final.status != "hospitalised" {
            let result = final.result.flatMap { try? JSONValue(parsing: [UInt8]($0)) }
            history?.record(HistoryEvent.result(flowId: final.id, status: final.status, result: result).by(client: name))
        }
        return final
    }

    private func flow(_ i: Int) -> (String, String) {
        switch workload {
        case .issue: return ("IssueTokens", #"{"owner":"O=Alice","amount":1}"#)
        case .move:
            let (from, to) = i % 2 == 0 ? ("O=Alice", "O=Bob") : ("O=Bob", "O=Alice")
            return ("MoveTokens", #"{"owner":"\#(from)","newOwner":"\#(to)","amount":\#(1 + i % 9)}"#)
        }
    }

    private static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// Hands out 0, 1, 2, ... to concurrent callers.
private final class Tickets: Sendable {
    private let counter = Atomic<Int>(0)
    func next() -> Int { counter.add(1, ordering: .relaxed).oldValue }
}

extension NodeDatabaseConfiguration.Kind: ExpressibleByArgument {}
