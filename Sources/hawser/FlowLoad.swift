import ArgumentParser
import Foundation
import HawserClient
import HawserCore
import Sim
import Synchronization

/// Drives flows on a node over its RPC API from concurrent callers and reports what ended: the
/// load of `hawser bench flows` and `hawser bench payments`. Each caller starts a flow with a
/// client request id and waits for its end in the same call (`NodeClient.run`); latency is from
/// the call (or from when it was due, with a rate) to the ended flow. With a history, every start
/// and end the callers saw is recorded (docs/history.md).
struct FlowLoad: Sendable {
    var clients: Int
    /// Flows started per second (open loop); nil: each caller starts its next as its last ends.
    var rate: Double?
    var history: HistoryWriter?

    struct Ended: Sendable {
        var status: String
        /// Milliseconds from the call (or from when it was due) to the end.
        var latency: Double
        /// Seconds from the start of the run to the end.
        var at: Double
    }

    /// Runs `count` flows, flow i being `flow(i)` (a name and JSON arguments) with client request
    /// id `prefix-i`, caller c through `targets[c % targets.count]`; a flow whose end `accept`
    /// refuses (it throws) ends the run. With a rate, flow i is due at i / rate seconds, and one
    /// started late (every caller busy) counts its lateness as latency.
    func drive(_ targets: [NodeClient], count: Int, prefix: String, flow: @escaping @Sendable (Int) -> (String, String),
               accept: @escaping @Sendable (NodeFlow) throws -> Void = { _ in }) async throws -> [Ended] {
        let tickets = Tickets()
        let origin = ContinuousClock.now
        return try await withThrowingTaskGroup(of: [Ended].self) { group in
            for caller in 0..<clients {
                let client = targets[caller % targets.count]
                group.addTask {
                    var out = [Ended]()
                    while case let i = tickets.next(), i < count {
                        var begin = ContinuousClock.now
                        if let rate {
                            begin = origin + .nanoseconds(Int64(Double(i) / rate * 1e9))
                            try await Task.sleep(until: begin, clock: .continuous)
                        }
                        let (name, arguments) = flow(i)
                        let final = try await run(client, name, arguments, clientRequestId: "\(prefix)-\(i)", by: "c\(caller)")
                        try accept(final)
                        let now = ContinuousClock.now
                        out.append(Ended(status: final.status, latency: Self.seconds(now - begin) * 1000, at: Self.seconds(now - origin)))
                    }
                    return out
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Runs a flow to its end, recording its start and end in the history as the caller `name` saw them.
    func run(_ client: NodeClient, _ flow: String, _ arguments: String, clientRequestId: String, by name: String) async throws -> NodeFlow {
        let final = try await start(clientRequestId, by: name) {
            try await client.run(flow, arguments: Array(arguments.utf8), clientRequestId: clientRequestId)
        }
        ended(final, by: name)
        return final
    }

    /// Starts a flow with `call`, recording the start in the history as the caller `name` saw it.
    func start(_ clientRequestId: String, by name: String, _ call: () async throws -> NodeFlow) async throws -> NodeFlow {
        history?.record(HistoryEvent.startInvoke(clientRequestId: clientRequestId).by(client: name))
        let started: NodeFlow
        do { started = try await call() } catch {
            history?.record(HistoryEvent.startInfo(clientRequestId: clientRequestId, error: errorText(error)).by(client: name))
            throw error
        }
        history?.record(HistoryEvent.startOk(clientRequestId: clientRequestId, flowId: started.id).by(client: name))
        return started
    }

    /// Records the end of a flow the caller `name` saw. A flow parked in the hospital has not
    /// ended (docs/history.md): no result for it.
    func ended(_ final: NodeFlow, by name: String) {
        guard final.status != "hospitalised" else { return }
        let result = final.result.flatMap { try? JSONValue(parsing: [UInt8]($0)) }
        history?.record(HistoryEvent.result(flowId: final.id, status: final.status, result: result).by(client: name))
    }

    /// Issues `count` token states of 1,000,000 to the parties in turn, 16 at a time.
    func seed(_ client: NodeClient, parties: [String], count: Int, prefix: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    for i in stride(from: worker, to: count, by: 16) {
                        let owner = parties[i % parties.count]
                        let flow = try await run(client, "IssueTokens", #"{"owner":"\#(owner)","amount":1000000}"#,
                                                 clientRequestId: "\(prefix)-seed-\(i)", by: "seed\(worker)")
                        guard flow.status == "completed" else { throw CLIError("seed flow \(flow.id) ended \(flow.status): \(flow.error ?? "")") }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Closes the history the run recorded, if any, and checks it as `hawser check history`
    /// does: prints the summary and every violation, and fails (exit status 1) on one.
    static func check(_ history: HistoryWriter?) throws {
        guard let history else { return }
        do { try history.close() } catch { throw CLIError("\(error)") }
        let (violations, summary) = try CheckCommand.HistoryCheck.check(history.path, allowUnfinished: false)
        print("history \(history.path): \(summary)")
        for violation in violations { print("HISTORY VIOLATION \(violation)") }
        if !violations.isEmpty { throw ExitCode(1) }
    }

    /// The figures of a run that took `elapsed` seconds: one line, `key=value` pairs.
    static func summary(_ ended: [Ended], elapsed: Double) -> String {
        let latencies = ended.map(\.latency).sorted()
        func percentile(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        let statuses = Dictionary(grouping: ended, by: \.status).mapValues(\.count).sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return String(format: "seconds=%.2f flows_per_second=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f %@",
                      elapsed, Double(ended.count) / elapsed, percentile(0.5), percentile(0.9), percentile(0.99), statuses)
    }

    /// The flows that ended in each interval of `every` seconds, one line each.
    static func intervals(_ ended: [Ended], every: Int, elapsed: Double) -> [String] {
        // The last interval ends with the run, so its rate is over the time it lasted.
        let windows = Dictionary(grouping: ended) { Int($0.at) / every }.mapValues(\.count)
        return (0...(windows.keys.max() ?? 0)).map { window in
            let count = windows[window] ?? 0
            let from = Double(window * every), until = min(Double((window + 1) * every), elapsed)
            return String(format: "interval_s=%.0f-%.1f ended=%d flows_per_second=%.1f", from, until, count, Double(count) / max(until - from, 0.001))
        }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// Hands out 0, 1, 2, ... to concurrent callers.
private final class Tickets: Sendable {
    private let counter = Atomic<Int>(0)
    func next() -> Int { counter.add(1, ordering: .relaxed).oldValue }
}
