import Foundation
import HawserTestSupport
import Testing

/// `hawser check history`: exit status 0, 1 or 2 for a history that keeps the rules, breaks one,
/// or cannot be read (docs/history.md).
@Suite(.timeLimit(.minutes(2)))
struct HistoryCommandTests {
    func check(_ lines: [String], _ options: [String] = []) async throws -> ChildProcess {
        let dir = try TemporaryDirectory()
        try lines.joined(separator: "\n").write(toFile: dir.path + "/history.jsonl", atomically: true, encoding: .utf8)
        return try await ChildProcess.run(HawserProcess.binary, ["check", "history", "history.jsonl"] + options, in: dir.path, scratch: dir.path)
    }

    static let a = String(repeating: "a", count: 64), b = String(repeating: "b", count: 64)
    static let state = String(repeating: "1", count: 64) + ":0"

    @Test func aDoubleSpendIsReportedWithItsLines() async throws {
        let invoke = { (tx: String) in #"{"type": "invoke", "op": "notarise", "txId": "\#(tx)", "inputs": ["\#(Self.state)"]}"# }
        let committed = { (tx: String) in #"{"type": "ok", "op": "notarise", "txId": "\#(tx)", "outcome": "committed"}"# }
        let good = try await check([invoke(Self.a), committed(Self.a)])
        #expect(good.status == 0 && good.output.contains("2 events, 1 transactions answered, 0 flows acknowledged: no invariant broken"), "\(good.output)")
        let bad = try await check([invoke(Self.a), committed(Self.a), invoke(Self.b), committed(Self.b)])
        #expect(bad.status == 1)
        #expect(bad.output.contains("double_spend: state \(Self.state) consumed by \(Self.a) and \(Self.b) (lines 2, 4)"), "\(bad.output)")
    }

    @Test func anUnfinishedFlowIsReportedUnlessAllowed() async throws {
        let lines = [#"{"type": "ok", "op": "start", "clientRequestId": "r1", "flowId": "f1"}"#]
        #expect(try await check(lines).status == 1)
        #expect(try await check(lines, ["--allow-unfinished"]).status == 0)
    }

    @Test func anUnreadableHistoryExitsWithTwoAndNamesTheLine() async throws {
        let run = try await check([#"{"type": "ok", "op": "start", "clientRequestId": "r1", "flowId": "f1"}"#, "{oops"])
        #expect(run.status == 2)
        #expect(run.output.contains("line 2: not JSON"), "\(run.output)")
    }
}
