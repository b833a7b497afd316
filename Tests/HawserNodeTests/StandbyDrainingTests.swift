import Embedded
import Flows
import Foundation
@testable import HawserNode
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// Draining is the process's state, and outlasts its terms: a process drained, then made a
/// standby by a switchover, answered `PUT /v1/admin/draining` 503 `standby`, so its drain could
/// not be undone, and it refused every start once it served again (found from outside). A
/// standby now answers both draining routes; every other route still gets the standby answer.
@Suite(.timeLimit(.minutes(3))) struct StandbyDrainingTests {
    @Test func aStandbyShowsAndUndoesItsDrain() async throws {
        let dir = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: dir.path + "/node.sqlite", fence: nil)
        let registry = FlowRegistry()
        let engines = FlowEngines(node: ServingState(.standby(active: "http://127.0.0.1:1")))
        let api = NodeAPI.gated(engines, database: database, registry: registry)
        try await Application(router: api.router()).test(.router) { client in
            try await client.execute(uri: "/v1/flows", method: .get, headers: ops) { response in
                #expect(response.status == .serviceUnavailable && String(buffer: response.body).contains(#""code":"standby""#))
            }
            for draining in [true, false] {
                try await client.execute(uri: "/v1/admin/draining", method: .put, headers: ops,
                                         body: ByteBuffer(string: #"{"draining":\#(draining)}"#)) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == #"{"draining":\#(draining),"runningFlows":0}"#)
                }
                #expect(engines.isDraining == draining)
                try await client.execute(uri: "/v1/admin/draining", method: .get, headers: ops) { response in
                    #expect(String(buffer: response.body) == #"{"draining":\#(draining),"runningFlows":0}"#)
                }
            }
            try await client.execute(uri: "/v1/admin/draining", method: .get) { response in
                #expect(response.status == .unauthorized, "credentials are still needed")
            }
        }
    }
}
