import Flows
import HawserCore
import HawserTestSupport
import Testing
import TokenSample

@Suite(.timeLimit(.minutes(10))) struct FlowSchemaTests {
    let schema = MoveTokens.argumentSchema!
    @discardableResult
    func check(_ text: String) throws(FlowArgumentError) -> String {
        let value = try! JSONValue(parsing: Array(text.utf8))
        return String(decoding: try schema.check(value) { ["O=Alice", "O=Bob"].contains($0) }.bytes, as: UTF8.self)
    }

    @Test func acceptsArgumentsThatFit() throws {
        try check(#"{"owner":"O=Alice","newOwner":"O=Bob","amount":9223372036854775807}"#)
    }

    /// JSON Schema's `integer` is any whole number, however written: it is stored plainly.
    @Test func wholeNumbersWrittenWithAFractionOrExponentAreAcceptedPlainly() throws {
        for written in ["321.0", "3.21e2", "32100e-2", "321"] {
            #expect(try check(#"{"owner":"O=Alice","newOwner":"O=Bob","amount":\#(written)}"#).contains(#""amount":321"#))
        }
        #expect(try check(#"{"owner":"O=Alice","newOwner":"O=Bob","amount":9.223372036854775807e18}"#)
            .contains(#""amount":9223372036854775807"#))
    }

    @Test(arguments: [
        (#"[1]"#, FlowArgumentError.notAnObject),
        (#"{"owner":"O=Alice","newOwner":"O=Bob","amount":1,"memo":"x"}"#, .unknownField("memo", allowed: ["owner", "newOwner", "amount"])),
        (#"{"owner":"O=Alice","amount":1}"#, .missingField("newOwner")),
        (#"{"owner":"O=Alice","newOwner":null,"amount":1}"#, .missingField("newOwner")),
        (#"{"owner":"O=Alice","newOwner":"O=Nobody","amount":1}"#, .unknownParty("newOwner", "O=Nobody")),
        (#"{"owner":1,"newOwner":"O=Bob","amount":1}"#, .wrongType("owner", "a party's name")),
        (#"{"owner":"O=Alice","newOwner":"O=Bob","amount":"1"}"#, .wrongType("amount", "a whole number")),
        (#"{"owner":"O=Alice","newOwner":"O=Bob","amount":1.5}"#, .wrongType("amount", "a whole number")),
        (#"{"owner":"O=Alice","newOwner":"O=Bob","amount":1.25e1}"#, .wrongType("amount", "a whole number")),
        (#"{"owner":"O=Alice","newOwner":"O=Bob","amount":1e30}"#, .outOfRange("amount", "a whole number from 1 to 9223372036854775807")),
        (#"{"owner":"O=Alice","newOwner":"O=Bob","amount":0}"#, .outOfRange("amount", "a whole number from 1 to 9223372036854775807")),
        (#"{"owner":"O=Alice","newOwner":"O=Bob","amount":-5}"#, .outOfRange("amount", "a whole number from 1 to 9223372036854775807")),
        (#"{"owner":"O=Alice","newOwner":"O=Bob","amount":9223372036854775808}"#,
         .outOfRange("amount", "a whole number from 1 to 9223372036854775807")),
    ])
    func refusesWhatDoesNotFit(_ text: String, _ expected: FlowArgumentError) {
        #expect(throws: expected) { try check(text) }
    }

    @Test func checksTextAndBooleansToo() throws {
        let schema = FlowSchema("A note.", fields: [.init("text", .string(maxLength: 4), "Up to four bytes."),
                                                    .init("urgent", .boolean, required: false, "Whether it is.")])
        func check(_ text: String) throws(FlowArgumentError) {
            _ = try schema.check(try! JSONValue(parsing: Array(text.utf8))) { _ in false }
        }
        try check(#"{"text":"abcd"}"#)
        try check(#"{"text":"é","urgent":true}"#)
        #expect(throws: FlowArgumentError.outOfRange("text", "1 to 4 bytes of text")) { try check(#"{"text":"abcde"}"#) }
        #expect(throws: FlowArgumentError.outOfRange("text", "1 to 4 bytes of text")) { try check(#"{"text":""}"#) }
        #expect(throws: FlowArgumentError.wrongType("urgent", "true or false")) { try check(#"{"text":"a","urgent":1}"#) }
    }

    @Test func describesItselfAsJSONSchema() throws {
        let json = String(decoding: IssueTokens.argumentSchema!.jsonSchema.bytes, as: UTF8.self)
        #expect(json.contains(#""additionalProperties":false"#))
        #expect(json.contains(#""amount":{"description":"How many tokens to issue.","maximum":9223372036854775807,"minimum":1,"type":"integer"}"#))
        #expect(json.contains(#""required":["owner","amount"]"#))
    }
}

@Suite(.timeLimit(.minutes(10))) struct StartupReplayTests {
    let now = Instant(microsecondsSinceEpoch: 5)
    func flow(_ id: String, attempts: Int = 0) -> FlowRecord {
        FlowRecord(id: FlowID(id), clientRequestId: nil, flowName: "F", arguments: [], attempts: attempts,
                   createdAt: Instant(microsecondsSinceEpoch: 1), updatedAt: Instant(microsecondsSinceEpoch: 1))
    }

    @Test func flowsWithoutAMarkerAreReplayedWithOneSet() {
        let plan = StartupReplay(resumable: [flow("a"), flow("b")], markers: [], now: now)
        #expect(plan.replay.map(\.id) == [FlowID("a"), FlowID("b")])
        #expect(plan.parked.isEmpty)
        #expect(plan.cleared.isEmpty)
        #expect(plan.writes.count == 2)
    }

    @Test func aFlowWhoseMarkerSurvivedIsParkedNotReplayed() {
        let plan = StartupReplay(resumable: [flow("a"), flow("b", attempts: 3)], markers: [FlowID("b"), FlowID("gone")], now: now)
        #expect(plan.replay.map(\.id) == [FlowID("a")])
        #expect(plan.parked.map(\.id) == [FlowID("b")])
        let parked = plan.parked[0].state
        #expect(parked.status == .hospitalised && parked.retryAt == nil && parked.attempts == 3 && parked.updatedAt == now)
        #expect(parked.error == StartupReplay.parkedReason)
        // The stale marker of a flow that no longer runs goes too.
        #expect(Set(plan.cleared) == [FlowID("b"), FlowID("gone")])
    }

    /// Deferring: the flows it would park are left, markers and all, for a second look; the rest
    /// is written as before.
    @Test func deferringLeavesTheFlowsItWouldParkUntouched() {
        let plan = StartupReplay(resumable: [flow("a"), flow("b")], markers: [FlowID("b"), FlowID("gone")], now: now)
        let (writes, suspects) = plan.deferringSuspects
        #expect(suspects == [FlowID("b")])
        #expect(writes.count == 2)
        #expect(writes.contains { if case .replayMarker(FlowID("gone"), false) = $0 { true } else { false } })
        #expect(writes.contains { if case .replayMarker(FlowID("a"), true) = $0 { true } else { false } })
    }
}
