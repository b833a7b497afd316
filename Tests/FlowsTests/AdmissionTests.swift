import Flows
import HawserCore
import HawserTestSupport
import Testing
import TokenSample
import Vault

/// What a start request must be before a flow is created: arguments the flow's schema accepts,
/// parties the node knows, a sensible client request id that names no other request.
@Suite(.timeLimit(.minutes(10))) struct AdmissionTests {
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func badArgumentsAndUnknownPartiesAreRefusedAndStartNothing() async throws {
        let directory = try TemporaryDirectory()
        try await SampleNode.with(directory: directory.path) { node in
            let refused: [(String, String, FlowArgumentError)] = [
                ("MoveTokens", #"{"owner":"O=Alice","newOwner":"O=Nobody","amount":5}"#, .unknownParty("newOwner", "O=Nobody")),
                ("IssueTokens", #"{"owner":"O=Alice","amount":-5}"#,
                 .outOfRange("amount", "a whole number from 1 to 9223372036854775807")),
                ("IssueTokens", #"{"owner":"O=Alice","amount":5,"memo":"hi"}"#, .unknownField("memo", allowed: ["owner", "amount"])),
            ]
            for (flow, arguments, why) in refused {
                await #expect(throws: FlowEngineError.invalidArguments(flow, why)) {
                    try await node.engine.start(flowName: flow, arguments: bytes(arguments), clientRequestId: "r")
                }
            }
            let flows = try await node.engine.list()
            #expect(flows.isEmpty)
        }
    }

    @Test func argumentsAreStoredExactlyAndInOneForm() async throws {
        let directory = try TemporaryDirectory()
        try await SampleNode.with(directory: directory.path) { node in
            let started = try await node.engine.start(flowName: "IssueTokens",
                                                      arguments: bytes(#" { "owner" : "O=Alice", "amount" : 9007199254740993 } "#))
            #expect(String(decoding: started.arguments, as: UTF8.self) == #"{"amount":9007199254740993,"owner":"O=Alice"}"#)
            #expect(try await node.engine.waitForEnd(started.id).status == .completed)
            #expect(try await TokenSample.balances(node.database.vault) == ["O=Alice": 9_007_199_254_740_993])
        }
    }

    @Test func aClientRequestIdNamesOneRequest() async throws {
        let directory = try TemporaryDirectory()
        try await SampleNode.with(directory: directory.path) { node in
            let first = try await node.engine.start(flowName: "IssueTokens", arguments: bytes(#"{"owner":"O=Alice","amount":5}"#),
                                                    clientRequestId: "order-1")
            // The same request, written another way: the same flow.
            let again = try await node.engine.start(flowName: "IssueTokens", arguments: bytes(#"{"amount":5, "owner":"O=Alice"}"#),
                                                    clientRequestId: "order-1")
            #expect(again.id == first.id)
            // Another request under the same id: refused, for a start and for a waiting start.
            await #expect(throws: FlowEngineError.clientRequestIdReused("order-1", first.id)) {
                try await node.engine.start(flowName: "IssueTokens", arguments: bytes(#"{"owner":"O=Alice","amount":6}"#),
                                            clientRequestId: "order-1")
            }
            await #expect(throws: FlowEngineError.clientRequestIdReused("order-1", first.id)) {
                try await node.engine.startAndWait(flowName: "MoveTokens",
                                                   arguments: bytes(#"{"owner":"O=Alice","newOwner":"O=Bob","amount":5}"#),
                                                   clientRequestId: "order-1")
            }
            for (key, why) in [("", "is empty"), (String(repeating: "x", count: 201), "is 201 bytes long; at most 200 are allowed"),
                               ("a\u{0}b", "holds a control character"),
                               // Kept for the responders of flow sessions, one per session id.
                               ("session:abc/0", "begins with `session:`, which names the responders of flow sessions")] {
                await #expect(throws: FlowEngineError.invalidClientRequestId(why)) {
                    try await node.engine.start(flowName: "IssueTokens", arguments: bytes(#"{"owner":"O=Alice","amount":5}"#),
                                                clientRequestId: key)
                }
            }
            _ = try await node.engine.waitForEnd(first.id)
            #expect(try await node.engine.list().count == 1)
        }
    }

    @Test func aRaceOfTwoRequestsUnderOneIdRefusesTheLoser() async throws {
        let directory = try TemporaryDirectory()
        try await SampleNode.with(directory: directory.path) { node in
            @Sendable func start(_ arguments: String) async -> Result<FlowRecord, any Error> {
                do {
                    return .success(try await node.engine.start(flowName: "IssueTokens", arguments: Array(arguments.utf8),
                                                                clientRequestId: "race"))
                } catch {
                    return .failure(error)
                }
            }
            async let a = start(#"{"owner":"O=Alice","amount":1}"#)
            async let b = start(#"{"owner":"O=Bob","amount":1}"#)
            let outcomes = await [a, b]
            let winners = outcomes.compactMap { try? $0.get() }
            #expect(winners.count == 1)
            #expect(outcomes.contains { if case .failure(FlowEngineError.clientRequestIdReused) = $0 { true } else { false } })
            _ = try await node.engine.waitForEnd(winners[0].id)
        }
    }
}
