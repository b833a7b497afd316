import Foundation
import HawserCore
import HawserTestSupport
import Sim
import Testing

/// `HistoryEvent` and `HistoryWriter`, the one writer of histories (docs/history.md): what they
/// write, `History` reads back as the same events, and the file grows while the run goes on.
@Suite(.timeLimit(.minutes(10))) struct HistoryWriterTests {
    static let a = SecureHash.sha256([1]), b = SecureHash.sha256([2]), c = SecureHash.sha256([3]), d = SecureHash.sha256([4])
    static let e = SecureHash.sha256([5])
    static let state = StateRef(txId: .sha256([9]), index: 3)
    static let window = TimeWindow(from: Instant(microsecondsSinceEpoch: 1), until: Instant(microsecondsSinceEpoch: 2))!

    /// An event as a string, for comparison (`History.Event` is not `Equatable`).
    static func summary(_ event: History.Event) -> String {
        switch event.op {
        case .notarise(let txId, let inputs, let outcome):
            let answer: String
            switch outcome {
            case nil: answer = "-"
            case .committed?: answer = "committed"
            case .timeWindowInvalid?: answer = "time_window_invalid"
            case .conflict(let consumed)?: answer = "conflict " + consumed.sorted { $0.key < $1.key }.map { "\($0.key) by \($0.value.sorted().map(\.hex).joined(separator: " and "))" }.joined(separator: ", ")
            }
            return "\(event.kind) notarise \(txId.hex) \(inputs.map { $0.map(\.description).joined(separator: " ") } ?? "-") \(answer)"
        case .start(let clientRequestId, let flowId): return "\(event.kind) start \(clientRequestId) \(flowId ?? "-")"
        case .result(let flowId, let status, let result): return "\(event.kind) result \(flowId) \(status) \(result ?? "-")"
        }
    }

    @Test func everyKindOfEventReadsBackAsWritten() throws {
        let dir = try TemporaryDirectory()
        let writer = try HistoryWriter(path: dir.path + "/history.jsonl")
        let consumedByA = Conflict(ref: Self.state, kind: .input, consumingTxIdHash: .sha256(Self.a.bytes))
        let events: [HistoryEvent] = [
            .notariseInvoke(txId: Self.a, inputs: [Self.state]),
            .notariseOk(txId: Self.a, outcome: .committed),
            .notariseInvoke(txId: Self.b, inputs: [Self.state]),
            .notariseOk(txId: Self.b, outcome: .conflict([consumedByA])),
            .notariseInvoke(txId: Self.c, inputs: []),
            .notariseFail(txId: Self.c, error: "unknown_party: \"O=Mallory\" is not authorised\n"),
            .notariseInfo(txId: Self.d, error: "timed out"),
            .notariseOk(txId: Self.e, outcome: .timeWindowInvalid(notaryTime: Instant(microsecondsSinceEpoch: 3), window: Self.window)),
            .startInvoke(clientRequestId: "pay-42"),
            .startOk(clientRequestId: "pay-42", flowId: "f1"),
            .startFail(clientRequestId: "pay-43", error: "bad flow"),
            .startInfo(clientRequestId: "pay-44", error: "connection reset"),
            .result(flowId: "f1", status: "completed", result: .object(["amount": .number(12345), "to": .string("O=Bob")])),
            .result(flowId: "f2", status: "failed", result: nil),
        ]
        for (i, event) in events.enumerated() { writer.record(event.by(client: "c\(i % 3)")) }
        try writer.close()
        let text = try String(contentsOfFile: writer.path, encoding: .utf8)
        let read = try History(jsonLines: text).events
        #expect(read.map(Self.summary) == [
            "invoke notarise \(Self.a.hex) \(Self.state) -",
            "ok notarise \(Self.a.hex) - committed",
            "invoke notarise \(Self.b.hex) \(Self.state) -",
            "ok notarise \(Self.b.hex) - conflict \(Self.state) by \(SecureHash.sha256(Self.a.bytes).hex)",
            "invoke notarise \(Self.c.hex)  -",
            "fail notarise \(Self.c.hex) - -",
            "info notarise \(Self.d.hex) - -",
            "ok notarise \(Self.e.hex) - time_window_invalid",
            "invoke start pay-42 -",
            "ok start pay-42 f1",
            "fail start pay-43 -",
            "info start pay-44 -",
            #"ok result f1 completed {"amount":12345,"to":"O=Bob"}"#,
            "ok result f2 failed -",
        ])
        #expect(read.map(\.line) == Array(1...events.count))
        // The fields the reader skips: the conflict's kind, the error, the client and the time.
        let objects = try text.split(separator: "\n").map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(((objects[3]["conflicts"] as? [[String: Any]])?.first?["kind"] as? String) == "input")
        #expect(objects[5]["error"] as? String == "unknown_party: \"O=Mallory\" is not authorised\n")
        #expect(objects.map { $0["client"] as? String } == events.indices.map { "c\($0 % 3)" })
        let times = objects.map { ($0["time"] as? NSNumber)?.int64Value ?? -1 }
        #expect(times.allSatisfy { $0 >= 0 } && times == times.sorted(), "\(times)")
        #expect(try HistoryChecker().check(History(jsonLines: text)).violations.isEmpty)
    }

    /// Lines reach the file once the buffer fills, not only at the end: memory stays bounded.
    @Test func linesAreWrittenAsTheRunGoesOn() throws {
        let dir = try TemporaryDirectory()
        let writer = try HistoryWriter(path: dir.path + "/history.jsonl")
        var ids = Ids(seed: 5)
        var recorded = 0
        func size() throws -> Int { try #require(FileManager.default.attributesOfItem(atPath: writer.path)[.size] as? Int) }
        while recorded < 100_000, try size() == 0 {
            writer.record(.notariseInvoke(txId: ids.hash(), inputs: [ids.ref(), ids.ref()]).by(client: "c0"))
            recorded += 1
        }
        let written = try size()
        #expect(written > 0 && written <= HistoryWriter.bufferBytes + 1024, "\(written) bytes on disk after \(recorded) events")
        try writer.close()
        #expect(try History(jsonLines: String(contentsOfFile: writer.path, encoding: .utf8)).events.count == recorded)
    }

    @Test func aFileThatCannotBeCreatedIsRefusedWithItsPath() throws {
        let dir = try TemporaryDirectory()
        #expect { try HistoryWriter(path: dir.path + "/no/such/dir/history.jsonl") } throws: {
            "\($0)" == "cannot create the history file \(dir.path)/no/such/dir/history.jsonl"
        }
    }
}
