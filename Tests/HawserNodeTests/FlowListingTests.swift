import Flows
import Foundation
import HawserNode
import Hummingbird
import HummingbirdTesting
import Testing

/// `GET /v1/flows` by name, client request id, status and start time, in pages (issue 14, item 12).
@Suite(.timeLimit(.minutes(10))) struct FlowListingTests {
    @Test func flowsAreFoundByNameClientRequestIdStatusAndStartTime() async throws {
        try await withNode { client, parts in
            var started = [FlowJSON]()
            for (flow, arguments, key) in [("IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":1}", "a"),
                                           ("MoveTokens", "{\"owner\":\"O=Bob\",\"newOwner\":\"O=Alice\",\"amount\":5}", "b"),
                                           ("IssueTokens", "{\"owner\":\"O=Bob\",\"amount\":2}", "c")] {
                let flow = try await client.execute(uri: "/v1/flows?wait=30", method: .post, headers: ops,
                                                    body: startBody(flow, arguments, clientRequestId: key)) { (response: TestResponse) async throws in
                    try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body))
                }
                started.append(flow)
            }
            let (a, b, c) = (started[0], started[1], started[2])
            #expect(b.status == "failed")  // Bob has no tokens to move
            func ids(_ query: String) async throws -> [String] {
                try await client.execute(uri: "/v1/flows?" + query, method: .get, headers: viewer) { (response: TestResponse) async throws in
                    #expect(response.status == .ok, "\(query): \(String(buffer: response.body))")
                    return try JSONDecoder().decode(FlowListJSON.self, from: Data(buffer: response.body)).flows.map(\.id)
                }
            }
            #expect(try await ids("flow=IssueTokens") == [a.id, c.id])
            #expect(try await ids("clientRequestId=b") == [b.id])
            #expect(try await ids("status=failed") == [b.id])
            #expect(try await ids("flow=IssueTokens&status=failed") == [])
            #expect(try await ids("flow=IssueTokens&limit=1") == [a.id])
            #expect(try await ids("flow=IssueTokens&limit=1&after=\(a.id)") == [c.id])
            #expect(try await ids("since=\(escape(b.createdAt))") == [b.id, c.id])
            #expect(try await ids("until=\(escape(b.createdAt))") == [a.id])
            #expect(try await ids("since=\(escape(a.createdAt))&until=\(escape(c.createdAt))&flow=IssueTokens") == [a.id])
            for bad in ["since=yesterday", "until=2026-13-01T00:00:00Z", "status=asleep", "limit=1001"] {
                try await client.execute(uri: "/v1/flows?" + bad, method: .get, headers: viewer) { (response: TestResponse) async throws in
                    #expect(response.status == .badRequest, "\(bad)")
                    #expect(String(buffer: response.body).contains("\"code\":\"invalid_query\""), "\(bad)")
                }
            }
            // A cursor that names no flow here (it was read as the start: page 1 again, for ever).
            for bad in ["after=zzz", "after=ffffffff-ffff-7fff-bfff-ffffffffffff", "after="] {
                try await client.execute(uri: "/v1/flows?" + bad, method: .get, headers: viewer) { (response: TestResponse) async throws in
                    #expect(response.status == .notFound, "\(bad)")
                    #expect(String(buffer: response.body).contains("\"code\":\"flow_not_found\""), "\(bad)")
                }
            }
            #expect(try await parts.engine.list(FlowQuery(flowName: "MoveTokens")).map(\.id.rawValue) == [b.id])
        }
    }

    private func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}
