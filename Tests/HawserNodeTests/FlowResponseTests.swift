import Flows
import Foundation
import HawserCore
@testable import HawserNode
import Testing

@Suite(.timeLimit(.minutes(10))) struct FlowResponseTests {
    @Test func theWrittenJSONDecodesToEveryFieldWithAwkwardCharactersEscaped() throws {
        let awkward = "quote \" backslash \\ newline \n tab \t bell \u{07} slash / é 🙂"
        let record = FlowRecord(id: FlowID("f-1"), clientRequestId: awkward, flowName: "IssueTokens",
                                arguments: Array("{\"amount\":3,\"owner\":\"O=Alice\"}".utf8), status: .hospitalised,
                                result: Array("{\"txId\":\"ab\"}".utf8), error: awkward, attempts: 2,
                                retryAt: Instant(microsecondsSinceEpoch: 3_000_000),
                                createdAt: Instant(microsecondsSinceEpoch: 1_000_000), updatedAt: Instant(microsecondsSinceEpoch: 2_000_000))
        let bytes = FlowResponse.bytes(record)
        let decoded = try JSONDecoder().decode(FlowJSON.self, from: Data(bytes))
        #expect(decoded.id == "f-1")
        #expect(decoded.clientRequestId == awkward)
        #expect(decoded.error == awkward)
        #expect(decoded.flow == "IssueTokens")
        #expect(decoded.status == "hospitalised")
        #expect(decoded.attempts == 2)
        #expect(decoded.arguments == .object(["amount": .number(3), "owner": .string("O=Alice")]))
        #expect(decoded.result == .object(["txId": .string("ab")]))
        #expect(decoded.retryAt == Instant(microsecondsSinceEpoch: 3_000_000).rfc3339)
        #expect(decoded.createdAt == Instant(microsecondsSinceEpoch: 1_000_000).rfc3339)
        // Keys come sorted, and absent values are left out.
        let running = FlowRecord(id: FlowID("f-2"), clientRequestId: nil, flowName: "F", arguments: Array("{}".utf8),
                                 createdAt: Instant(microsecondsSinceEpoch: 0), updatedAt: Instant(microsecondsSinceEpoch: 0))
        let text = String(decoding: FlowResponse.bytes(running), as: UTF8.self)
        #expect(text == "{\"arguments\":{},\"attempts\":0,\"createdAt\":\"\(Instant(microsecondsSinceEpoch: 0).rfc3339)\",\"flow\":\"F\",\"id\":\"f-2\",\"status\":\"running\",\"updatedAt\":\"\(Instant(microsecondsSinceEpoch: 0).rfc3339)\"}")
    }

    @Test func jsonValuesOfEveryKindDecode() throws {
        let value = try JSONDecoder().decode(JSONValue.self, from: Data("{\"a\":[true,1.5,\"s\",null,{\"b\":false},[]]}".utf8))
        #expect(value == .object(["a": .array([.bool(true), .number(1.5), .string("s"), .null, .object(["b": .bool(false)]), .array([])])]))
    }

    /// Flow arguments pass through a JSONValue: a 64-bit whole number must come out as it went in
    /// (as a Double, 9223372036854775807 came out as 9.2233720368547758e+18, which no Int64
    /// argument decodes from; the API fuzz test found it).
    @Test func wholeNumbersKeepEveryDigit() throws {
        for text in ["9223372036854775807", "-9223372036854775808", "9007199254740993", "0"] {
            let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect(String(decoding: value.bytes, as: UTF8.self) == text)
        }
        let big = try JSONValue(parsing: Array("9223372036854775808".utf8))
        #expect(big == .number(JSONNumber(text: "9223372036854775808")!), "the parser keeps any integer's digits")
    }
}
