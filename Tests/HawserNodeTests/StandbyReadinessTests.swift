import Embedded
import Flows
import Foundation
@testable import HawserNode
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// A standby that does not stand for election (its health check fails) says why in its
/// readiness: both it and a healthy standby answered `{"status":"standby"}`, so an operator could
/// not tell a standby that can take over from one that cannot (found from outside, with the
/// pair's database stopped).
@Suite(.timeLimit(.minutes(3))) struct StandbyReadinessTests {
    @Test func aStandbyThatCannotStandSaysWhy() async throws {
        let dir = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: dir.path + "/node.sqlite", fence: nil)
        let engines = FlowEngines(node: ServingState(.standby(active: nil)))
        let api = NodeAPI.gated(engines, database: database, registry: FlowRegistry())
        try await Application(router: api.router()).test(.router) { client in
            for (problem, body) in [("the node database does not answer", #"{"problem":"the node database does not answer","status":"standby"}"#),
                                    (nil, #"{"status":"standby"}"#)] {
                engines.node.setHealthProblem(problem)
                try await client.execute(uri: "/health/ready", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(String(buffer: response.body) == body)
                }
            }
        }
    }
}
