import Foundation
import HawserCore
import Testing

@Suite(.timeLimit(.minutes(10))) struct JSONValueTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue(parsing: Array(text.utf8)) }
    func write(_ value: JSONValue) -> String { String(decoding: value.bytes, as: UTF8.self) }

    @Test(arguments: ["9007199254740993", "123456789012345678", "-9223372036854775808", "18446744073709551617",
                      "1234567890123456789012345678901234567890", "0.1000000000000000055511151231257827", "1E+400", "-0"])
    func numbersKeepTheirExactText(_ literal: String) throws {
        let value = try parse("{\"n\":\(literal)}")
        #expect(value.object?["n"] == .number(JSONNumber(text: literal)!))
        #expect(write(value) == "{\"n\":\(literal)}")
    }

    @Test func integersAreReadExactlyOrNotAtAll() throws {
        #expect(JSONNumber(text: "9007199254740993")?.int64 == 9_007_199_254_740_993)
        #expect(JSONNumber(text: "9223372036854775808")?.int64 == nil)
        #expect(JSONNumber(text: "9223372036854775808")?.isPlainInteger == true)
        #expect(JSONNumber(text: "10.0")?.int64 == nil)
        #expect(JSONNumber(text: "1e3")?.isPlainInteger == false)
    }

    @Test func writesMembersSortedAndStringsEscaped() throws {
        let value = try parse(#" { "b" : [1, true, null], "a" : "q\"\\\n\u0001é😀\/", "é": {} } "#)
        #expect(write(value) == #"{"a":"q\"\\\n\u0001é😀/","b":[1,true,null],"é":{}}"#)
        #expect(try parse(write(value)) == value)
    }

    @Test func surrogatePairsBecomeOneCharacter() throws {
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "{\"a\":1,\"a\":2}", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul", "\"\\x\"",
        "\"\\ud83d\"", "\"\\ude00\"", "\"a\nb\"", "{} {}", "{a:1}", "NaN", "Infinity", "[\"\u{7f}\"]x",
    ])
    func refusesWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test func refusesDeepNestingWithoutExhaustingTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try parse(deep) }
        let fine = String(repeating: "[", count: JSONValue.maxDepth - 1) + String(repeating: "]", count: JSONValue.maxDepth - 1)
        #expect((try? parse(fine)) != nil)
    }

    @Test func codableKeepsIntegersExact() throws {
        let decoded = try JSONDecoder().decode(JSONValue.self, from: Data("{\"a\":9007199254740993,\"b\":123456789012345678,\"c\":1.5}".utf8))
        #expect(decoded == .object(["a": .number(9_007_199_254_740_993), "b": .number(123_456_789_012_345_678), "c": .number(1.5)]))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(String(decoding: try encoder.encode(decoded), as: UTF8.self) == "{\"a\":9007199254740993,\"b\":123456789012345678,\"c\":1.5}")
    }
}
