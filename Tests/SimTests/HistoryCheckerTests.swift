import HawserCore
import Sim
import Testing

/// Each rule of `HistoryChecker` on hand-made histories: one that keeps it, one that breaks it.
@Suite(.timeLimit(.minutes(10))) struct HistoryCheckerTests {
    static let a = String(repeating: "a", count: 64), b = String(repeating: "b", count: 64), c = String(repeating: "c", count: 64)
    static let s1 = String(repeating: "1", count: 64) + ":0", s2 = String(repeating: "2", count: 64) + ":1"

    static func invoke(_ tx: String, _ inputs: [String]) -> String {
        #"{"type": "invoke", "op": "notarise", "txId": "\#(tx)", "inputs": [\#(inputs.map { "\"\($0)\"" }.joined(separator: ","))]}"#
    }
    static func committed(_ tx: String) -> String { #"{"type": "ok", "op": "notarise", "txId": "\#(tx)", "outcome": "committed"}"# }
    /// A conflict answer as the notary gives it: the consumer named by the SHA-256 of its id.
    static func conflict(_ tx: String, _ state: String, by: String) -> String {
        let hash = SecureHash.sha256(SecureHash(hex: by)!.bytes).hex
        return #"{"type": "ok", "op": "notarise", "txId": "\#(tx)", "outcome": "conflict", "conflicts": [{"ref": "\#(state)", "kind": "input", "consumingTxIdHash": "\#(hash)"}]}"#
    }

    func check(_ lines: [String], allowUnfinished: Bool = false) throws -> [HistoryChecker.Violation] {
        try HistoryChecker(allowUnfinished: allowUnfinished).check(History(jsonLines: lines.joined(separator: "\n"))).violations
    }

    @Test func aNotaryThatKeepsItsWordPasses() throws {
        let lines = [Self.invoke(Self.a, [Self.s1]), Self.invoke(Self.b, [Self.s1, Self.s2]), Self.committed(Self.a),
                     Self.conflict(Self.b, Self.s1, by: Self.a),
                     #"{"type": "info", "op": "notarise", "txId": "\#(Self.c)", "error": "timeout"}"#,
                     Self.committed(Self.a)]  // a retry: the same answer
        #expect(try check(lines) == [])
    }

    @Test func twoCommittedSpendsOfOneStateAreADoubleSpend() throws {
        let lines = [Self.invoke(Self.a, [Self.s1]), Self.invoke(Self.b, [Self.s2, Self.s1.uppercased()]),
                     Self.committed(Self.a), Self.committed(Self.b)]
        #expect(try check(lines) == [HistoryChecker.Violation(rule: "double_spend", detail: "state \(Self.s1) consumed by \(Self.a) and \(Self.b)", lines: [3, 4])])
    }

    @Test func aConflictNamingAnotherConsumerThanTheCommittedOneIsADoubleSpend() throws {
        let lines = [Self.invoke(Self.a, [Self.s1]), Self.committed(Self.a), Self.invoke(Self.b, [Self.s1]),
                     Self.conflict(Self.b, Self.s1, by: Self.c)]
        #expect(try check(lines).map(\.rule) == ["double_spend"])
    }

    @Test func anOutcomeThatChangesIsReported() throws {
        let lines = [Self.invoke(Self.a, [Self.s1]), Self.committed(Self.a), Self.conflict(Self.a, Self.s1, by: Self.b)]
        let found = try check(lines)
        #expect(found.map(\.rule).sorted() == ["changed_outcome", "double_spend"])
        #expect(found.first { $0.rule == "changed_outcome" }?.lines == [2, 3])
    }

    @Test func aConflictNamingAConsumerThatNeverHadTheStateIsFalse() throws {
        let lines = [Self.invoke(Self.a, [Self.s2]), Self.invoke(Self.b, [Self.s1]), Self.conflict(Self.b, Self.s1, by: Self.a)]
        #expect(try check(lines).map(\.rule) == ["false_conflict"])
    }

    @Test func flowsEndOnceAndEveryAcknowledgedStartEnds() throws {
        let start = { (crid: String, flow: String) in #"{"type": "ok", "op": "start", "clientRequestId": "\#(crid)", "flowId": "\#(flow)"}"# }
        let result = { (flow: String, amount: Int) in
            #"{"type": "ok", "op": "result", "flowId": "\#(flow)", "status": "completed", "result": {"moved": \#(amount), "to": "bob"}}"#
        }
        let good = [#"{"type": "invoke", "op": "start", "clientRequestId": "r1"}"#, start("r1", "f1"), start("r1", "f1"),
                    result("f1", 5), #"{"type": "ok", "op": "result", "flowId": "f1", "status": "completed", "result": {"to": "bob", "moved": 5}}"#]
        #expect(try check(good) == [])
        #expect(try check([start("r1", "f1"), start("r1", "f2"), result("f1", 5), result("f2", 5)]).map(\.rule) == ["duplicate_flow"])
        #expect(try check([start("r1", "f1"), result("f1", 5), result("f1", 6)]).map(\.rule) == ["changed_result"])
        #expect(try check([start("r1", "f1"), start("r2", "f2"), result("f2", 1)]).map(\.detail) == ["flow f1 (client request id r1) has no result"])
        #expect(try check([start("r1", "f1")], allowUnfinished: true) == [])
        // A flow read while parked in the hospital (or running) has not ended: it hid `unfinished`
        // before, and a later end was a `changed_result`.
        let parked = #"{"type": "ok", "op": "result", "flowId": "f1", "status": "hospitalised"}"#
        #expect(try check([start("r1", "f1"), parked]).map(\.rule) == ["unfinished"])
        #expect(try check([start("r1", "f1"), parked, result("f1", 5)]) == [])
        // Read as not ended after its end: the end was lost (it passed, found from outside).
        #expect(try check([start("r1", "f1"), result("f1", 5), parked]).map(\.detail) == ["flow f1 ended completed, then read as hospitalised"])
    }

    /// Found from outside: one conflict answer naming two consumers of a state passed (the reader
    /// kept one consumer a state); an answer before its `invoke` counted for nothing, so did a
    /// second `invoke` of a transaction with other inputs; CRLF lines were "not JSON".
    @Test func oneAnswerNamingTwoConsumersIsADoubleSpend() throws {
        let (ha, hb) = (SecureHash.sha256(SecureHash(hex: Self.a)!.bytes).hex, SecureHash.sha256(SecureHash(hex: Self.b)!.bytes).hex)
        let both = #"{"type": "ok", "op": "notarise", "txId": "\#(Self.c)", "outcome": "conflict", "conflicts": [{"ref": "\#(Self.s1)", "kind": "input", "consumingTxIdHash": "\#(ha)"}, {"ref": "\#(Self.s1)", "kind": "input", "consumingTxIdHash": "\#(hb)"}]}"#
        let lines = [Self.invoke(Self.a, [Self.s1]), Self.invoke(Self.b, [Self.s1]), Self.invoke(Self.c, [Self.s1]), both]
        let found = try check(lines)
        #expect(found.map(\.rule) == ["double_spend"] && found.first?.lines == [4, 4], "\(found)")
    }

    @Test func theOrderOfAnAnswerAndItsInvokeDoesNotMatter() throws {
        let lines = [Self.committed(Self.a), Self.invoke(Self.a, [Self.s1]), Self.invoke(Self.b, [Self.s1]), Self.committed(Self.b)]
        #expect(try check(lines).map(\.rule) == ["double_spend"])
        #expect {
            _ = try History(jsonLines: [Self.invoke(Self.a, [Self.s1]), Self.invoke(Self.a, [Self.s2])].joined(separator: "\n"))
        } throws: { error in
            (error as? History.ReadError).map { $0.line == 2 && $0.problem.contains("invoked at line 1 with other inputs") } ?? false
        }
        #expect(try check([Self.invoke(Self.a, [Self.s1]), Self.invoke(Self.a, [Self.s1]), Self.committed(Self.a)]) == [], "a retry's invoke")
        let crlf = [Self.invoke(Self.a, [Self.s1]), Self.committed(Self.a)].joined(separator: "\r\n") + "\r\n"
        #expect(try HistoryChecker().check(History(jsonLines: crlf)).violations == [])
    }

    @Test func aBadLineIsRefusedWithItsNumber() {
        for (line, problem) in [("{not json", "not JSON"), (#"{"type": "ok", "op": "pay"}"#, "unknown op pay"),
                                (#"{"type": "invoke", "op": "notarise", "txId": "\#(Self.a)"}"#, "needs `inputs`"),
                                (#"{"type": "invoke", "op": "notarise", "txId": "aa"}"#, "64 hexadecimal digits"),
                                (#"{"type": "invoke", "op": "notarise", "txId": "\#(Self.a)", "inputs": ["\#(Self.b):01"]}"#, "TXID:INDEX"),
                                (#"{"type": "ok", "op": "notarise", "txId": "\#(Self.a)", "outcome": "maybe"}"#, "`outcome` must be"),
                                (#"{"type": "ok", "op": "notarise", "txId": "\#(Self.a)", "outcome": "conflict", "conflicts": [{"ref": "\#(Self.s1)", "kind": "bogus", "consumingTxIdHash": "\#(Self.b)"}]}"#,
                                 "`kind` must be input or reference")] {
            #expect {
                _ = try History(jsonLines: "\n" + line)
            } throws: { error in
                let error = error as? History.ReadError
                return error?.line == 2 && error?.problem.contains(problem) == true
            }
        }
    }
}
