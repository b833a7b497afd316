import Coordination
import Embedded
import Flows
import Foundation
@testable import HawserNode
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// A hot-warm (or hot-cold) node whose write is refused by fencing (`stale_epoch`: another
/// process has claimed the shard since) answers the request with the standby answer, 503
/// `standby` and `Retry-After: 1`, so that the client asks again where the shard is now. It did
/// so only when the step-down the refusal sets off happened to be made before the answer; until
/// then the answer was 503 `database_unavailable`, which says the database cannot be reached.
/// Failed before the fix (`database_unavailable`). The gate is driven here while the node still
/// serves, as in the moment between the refusal and the step-down.
@Suite(.timeLimit(.minutes(10))) struct RefusedWriteAnswerTests {
    struct Greet: Flow {
        var text: String
        func run(_ context: FlowContext) async throws -> String { text }
    }

    @Test(arguments: ["", "?wait=5"]) func aStartWhoseCommitWasRefusedGetsTheStandbyAnswer(query: String) async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/node.sqlite"
        let database = try SQLiteNodeDatabase(path: path, fence: WriteFence(resource: "node/0", epoch: Epoch(1)))
        _ = try await database.flows.commit([])
        // Another process claims the shard at a newer epoch.
        _ = try await SQLiteNodeDatabase(path: path, fence: WriteFence(resource: "node/0", epoch: Epoch(2))).flows.commit([])

        var registry = FlowRegistry()
        registry.register(Greet.self)
        let refusals = RefusalCount()
        let engine = FlowEngine(store: FencedFlowStore(base: database.flows) { _ in refusals.add() }, registry: registry,
                                services: FlowServices(), logger: quietLogger)
        let api = NodeAPI.gated(FlowEngines(node: ServingState(.active(engine))), database: database, registry: registry)
        try await Application(router: api.router()).test(.router) { client in
            try await client.execute(uri: "/v1/flows" + query, method: .post, headers: ops,
                                     body: startBody("Greet", #"{"text":"refused"}"#, clientRequestId: "greet-1")) { response in
                let body = String(buffer: response.body)
                #expect(response.status == .serviceUnavailable, "\(body)")
                #expect(response.headers[.retryAfter] == "1")
                #expect(body.contains(#""code":"standby""#), "\(body)")
            }
        }
        #expect(refusals.count > 0, "the refusal was reported, so the node steps down")
        #expect(try await database.flows.list(FlowQuery()).isEmpty, "the refused start wrote nothing")
    }

    final class RefusalCount: Sendable {
        private let value = Mutex(0)
        func add() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }
}
