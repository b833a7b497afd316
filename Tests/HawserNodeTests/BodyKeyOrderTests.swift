import Foundation
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import Testing

/// Every JSON body the APIs write has its keys in one order, sorted: an error body came with
/// `code` and `message` in either order, request by request (about one in six), as did the
/// bodies a route returns as a value (`/v1/admin/draining`, the notary's `/v1/identity`).
@Suite struct BodyKeyOrderTests {
    @Test func theNodesBodiesHaveSortedKeys() async throws {
        try await withNode { client, _ in
            for _ in 0..<50 {
                try await client.execute(uri: "/v1/flows", method: .get) { response in
                    #expect(String(buffer: response.body) == #"{"error":{"code":"unauthenticated","message":"send the credentials of an RPC user (HTTP Basic)"}}"#)
                }
                try await client.execute(uri: "/v1/admin/draining", method: .get, headers: ops) { response in
                    #expect(String(buffer: response.body) == #"{"draining":false,"runningFlows":0}"#)
                }
            }
        }
    }

    @Test func theNotarysBodiesHaveSortedKeys() async throws {
        try await withNotary { client, _ in
            for _ in 0..<50 {
                try await client.execute(uri: "/v1/identity", method: .get) { response in
                    let body = String(buffer: response.body)
                    #expect(body.hasPrefix(#"{"name":"#) && body.contains(#"","publicKey":""#), "\(body)")
                }
            }
        }
    }
}
