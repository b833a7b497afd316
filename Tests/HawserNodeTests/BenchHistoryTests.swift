import Foundation
import HawserCore
import HawserTestSupport
import Sim
import Testing

/// `hawser bench notary --history FILE` records every request and what its caller was told as
/// docs/history.md says, on each path the load takes (one request per HTTP call, HTTP batches,
/// the gRPC stream), and ends with the checks of `hawser check history`.
@Suite(.timeLimit(.minutes(3)))
struct BenchHistoryTests {
    @Test(arguments: [["--batch-size", "1"], ["--batch-size", "7"], ["--grpc"]])
    func everyRequestIsRecordedBeforeItsAnswerAndChecked(transport: [String]) async throws {
        let dir = try TemporaryDirectory()
        let requests = 60, warmup = 5, clients = 3
        let run = try await ChildProcess.run(HawserProcess.binary, [
            "bench", "notary", "--embedded", "--requests", "\(requests)", "--warmup", "\(warmup)", "--clients", "\(clients)",
            "--double-spend-ratio", "0.3", "--ceiling-seconds", "0", "--history", "run.jsonl",
        ] + transport, in: dir.path, scratch: dir.path)
        #expect(run.status == 0, "\(run.output)")
        let total = requests + warmup
        #expect(run.output.contains("history               run.jsonl: \(2 * total) events, \(total) transactions answered, 0 flows acknowledged: no invariant broken"),
                "\(run.output)")

        let text = try String(contentsOfFile: dir.path + "/run.jsonl", encoding: .utf8)
        let history = try History(jsonLines: text)
        #expect(HistoryChecker().check(history).violations.isEmpty)
        // Each request: its invoke with its inputs, then exactly one answer (an embedded notary
        // answers every one), never the other way round.
        var invoked = Set<SecureHash>()
        var answered = [SecureHash: History.Outcome]()
        for event in history.events {
            guard case .notarise(let txId, let inputs, let outcome) = event.op else {
                Issue.record("line \(event.line) is not a notarisation")
                continue
            }
            switch event.kind {
            case .invoke:
                #expect(inputs?.isEmpty == false && invoked.insert(txId).inserted, "line \(event.line)")
            case .ok:
                #expect(invoked.contains(txId), "line \(event.line): an answer before its invoke")
                if let outcome { #expect(answered.updateValue(outcome, forKey: txId) == nil, "line \(event.line): a second answer") }
            case .fail, .info:
                Issue.record("line \(event.line): \(event.kind) from an embedded notary")
            }
        }
        #expect(invoked.count == total && answered.count == total)
        // About 18 of 60 transactions spend an input of an earlier one: conflicts are recorded too.
        #expect(answered.values.contains { if case .conflict = $0 { true } else { false } })
        // Every line names its caller and its time, and the times never decrease down the file.
        let objects = try text.split(separator: "\n").map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(Set(objects.compactMap { $0["client"] as? String }).isSubset(of: (0..<clients).map { "c\($0)" }))
        #expect(objects.allSatisfy { $0["client"] is String })
        let times = objects.map { ($0["time"] as? NSNumber)?.int64Value ?? -1 }
        #expect(times.first.map { $0 >= 0 } == true && times == times.sorted())
    }

    /// `hawser bench flows --history`: each flow's start and its end, as its client saw them.
    @Test(arguments: [["--workload", "issue"], ["--workload", "move", "--seed-states", "2"]])
    func everyFlowStartedAndItsEndAreRecordedAndChecked(workload: [String]) async throws {
        let dir = try TemporaryDirectory()
        let run = try await ChildProcess.run(HawserProcess.binary, [
            "bench", "flows", "--flows", "12", "--warmup", "3", "--clients", "3", "--history", "flows.jsonl",
        ] + workload, in: dir.path, scratch: dir.path)
        #expect(run.status == 0, "\(run.output)")
        let seeded = workload.contains("move") ? 4 : 0, total = 15 + seeded
        #expect(run.output.contains("history flows.jsonl: \(3 * total) events, 0 transactions answered, \(total) flows acknowledged: no invariant broken"),
                "\(run.output)")
        let history = try History(jsonLines: try String(contentsOfFile: dir.path + "/flows.jsonl", encoding: .utf8))
        #expect(HistoryChecker().check(history).violations.isEmpty)
        // Per flow: the invoke, then its acknowledgement, then its end, completed with its output.
        var invoked = Set<String>(), acknowledged = [String: String](), ended = Set<String>()
        for event in history.events {
            switch (event.kind, event.op) {
            case (.invoke, .start(let requestId, nil)): #expect(invoked.insert(requestId).inserted)
            case (.ok, .start(let requestId, let flowId?)):
                #expect(invoked.contains(requestId) && acknowledged.updateValue(flowId, forKey: requestId) == nil, "line \(event.line)")
            case (.ok, .result(let flowId, let status, let result)):
                #expect(acknowledged.values.contains(flowId) && status == "completed" && result != nil && ended.insert(flowId).inserted,
                        "line \(event.line)")
            default: Issue.record("line \(event.line): \(event.kind) \(event.op)")
            }
        }
        #expect(invoked.count == total && acknowledged.count == total && ended.count == total)
    }

    @Test func aHistoryPathThatCannotBeWrittenFailsTheRunBeforeAnyLoad() async throws {
        let dir = try TemporaryDirectory()
        let run = try await ChildProcess.run(HawserProcess.binary, [
            "bench", "notary", "--embedded", "--requests", "5", "--ceiling-seconds", "0", "--history", "missing/run.jsonl",
        ], in: dir.path, scratch: dir.path)
        #expect(run.status != 0)
        #expect(run.output.contains("cannot create the history file missing/run.jsonl"), "\(run.output)")
        #expect(!run.output.contains("signing"), "\(run.output)")
    }
}
