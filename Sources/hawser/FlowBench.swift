import ArgumentParser
import Foundation
import HawserClient
import HawserCore
import HawserNode
import Logging
import Synchronization

/// `hawser bench flows`: the issue-token flow on an all-in-one node, driven over the RPC API by
/// concurrent clients. Each client starts a flow (with a client request id) and waits for its end
/// in the same call (`NodeClient.run`); latency is from the call to the completed flow.
struct FlowBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows",
        abstract: "Measure completed flows per second and latency on an in-process all-in-one node (use a release build).")

    @Option(help: "Concurrent clients.") var clients = 64
    @Option(help: "Flows to run (timed).") var flows = 5_000
    @Option(help: "Untimed flows run first.") var warmup = 500
    @Option(help: "Start flows at this many per second (open loop; latency counts from each flow's scheduled start). Default: each client starts its next flow as soon as the last one ends.")
    var rate: Double?
    @Option(help: "The node's directory; a temporary one if omitted.") var dir: String?

    func validate() throws {
        guard clients > 0, flows > 0, warmup >= 0 else { throw ValidationError("--clients and --flows must be positive") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
    }

    func run() async throws {
        let directory = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("hawser-flow-bench-\(UUID().uuidString)").path
        // A directory of our own making is removed afterwards; one the caller named is kept.
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: directory) } }
        let config = directory + "/node.json"
        if !FileManager.default.fileExists(atPath: config) {
            _ = try Node.initialise(directory: directory, port: 0, parties: ["O=Alice", "O=Bob"], username: "bench", password: "bench")
        }
        var logger = Logger(label: "hawser.bench")
        logger.logLevel = .error
        let configuration = try NodeConfiguration.load(config)
        try await InProcessServer.with(logger: logger, make: { onListening in
            try Node.application(configuration: configuration, baseDirectory: directory, logger: logger, onListening: onListening).app
        }) { port in
            let client = NodeClient(urls: ["http://127.0.0.1:\(port)"], username: "bench", password: "bench")
            if warmup > 0 { _ = try await drive(client, count: warmup, prefix: "warmup") }
            let start = ContinuousClock.now
            var latencies = try await drive(client, count: flows, prefix: "timed")
            let elapsed = ContinuousClock.now - start
            try await client.shutdown()
            latencies.sort()
            func percentile(_ p: Double) -> Double {
                latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
            }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print(String(format: "flows=%d clients=%d rate=%@ seconds=%.2f flows_per_second=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f",
                         flows, clients, rate.map { String(format: "%.0f", $0) } ?? "closed-loop", seconds, Double(flows) / seconds,
                         percentile(0.5), percentile(0.9), percentile(0.99)))
        }
    }

    /// Runs `count` issue flows from `clients` concurrent callers; returns each flow's latency in ms.
    /// With a rate, flow i is due at i / rate seconds; a caller waits for the due time, and a flow
    /// that starts late (every caller busy) counts its lateness as latency.
    private func drive(_ client: NodeClient, count: Int, prefix: String) async throws -> [Double] {
        let tickets = Tickets()
        let origin = ContinuousClock.now
        return try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<clients {
                group.addTask {
                    var out = [Double]()
                    while case let i = tickets.next(), i < count {
                        var begin = ContinuousClock.now
                        if let rate {
                            begin = origin + .nanoseconds(Int64(Double(i) / rate * 1e9))
                            try await Task.sleep(until: begin, clock: .continuous)
                        }
                        let final = try await client.run("IssueTokens", arguments: Array("{\"owner\":\"O=Alice\",\"amount\":1}".utf8),
                                                         clientRequestId: "\(prefix)-\(randomUUID().uuidString)-\(i)")
                        guard final.status == "completed" else { throw CLIError("flow \(final.id) ended \(final.status): \(final.error ?? "")") }
                        let d = ContinuousClock.now - begin
                        out.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
                    }
                    return out
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }
}

/// Hands out 0, 1, 2, ... to concurrent callers.
private final class Tickets: Sendable {
    private let counter = Atomic<Int>(0)
    func next() -> Int { counter.add(1, ordering: .relaxed).oldValue }
}
