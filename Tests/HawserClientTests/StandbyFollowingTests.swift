import Foundation
import Synchronization
import HawserClient
import HawserTestSupport
import Testing

/// `NodeClient` against fake nodes that answer as a hot-warm pair does (docs/node.md, "Clients
/// that follow the active node"): a standby's 503 sends the next attempt to the active node it
/// names, the standby is asked again only after its Retry-After (unless the node it named is
/// down), and an event stream resumes there after the last event seen.
@Suite(.timeLimit(.minutes(1))) struct StandbyFollowingTests {
    static let flowJSON = #"{"id":"f1","flow":"Steps","status":"completed","attempts":0}"#

    /// A standby that names `active` (or no node) in every /v1 answer.
    static func standby(active: String?) throws -> FakeNode {
        let named = active.map { #","active":"\#($0)""# } ?? ""
        return try FakeNode { _ in
            .init(status: 503, headers: [("Retry-After", "1"), ("Content-Type", "application/json")],
                  body: #"{"error":{"code":"standby","message":"this node is a standby"\#(named)}}"#)
        }
    }

    static func answering() throws -> FakeNode {
        try FakeNode { _ in .init(status: 200, headers: [("Content-Type", "application/json")], body: flowJSON) }
    }

    static func client(_ urls: [String]) -> NodeClient {
        NodeClient(urls: urls, username: "ops", password: "secret",
                   retryPolicy: RetryPolicy(maxAttempts: 5, baseBackoff: .milliseconds(1), maxBackoff: .milliseconds(5)))
    }

    @Test func aStandbySendsTheNextAttemptToTheActiveNodeEvenOneNotInTheList() async throws {
        let active = try Self.answering()
        let listed = try Self.answering()
        let standby = try Self.standby(active: active.url)
        let client = Self.client([standby.url, listed.url])
        #expect(try await client.flow("f1").id == "f1")
        #expect(standby.requests.count == 1)
        #expect(listed.requests.isEmpty, "the list was not walked")
        let asked = try #require(active.requests.first)
        #expect(asked.path == "/v1/flows/f1")
        // Later calls go straight to the active node.
        #expect(try await client.flow("f1").id == "f1")
        #expect(active.requests.count == 2 && standby.requests.count == 1)
        try await client.shutdown()
    }

    @Test func withNoActiveNodeNamedTheClientWalksItsList() async throws {
        let listed = try Self.answering()
        let standby = try Self.standby(active: nil)
        let client = Self.client([standby.url, listed.url])
        #expect(try await client.flow("f1").id == "f1")
        #expect(standby.requests.count == 1 && listed.requests.count == 1)
        try await client.shutdown()
    }

    @Test func aStandbyIsAskedAgainOnlyAfterItsRetryAfterUnlessTheNodeItNamedIsDown() async throws {
        // Nothing listens on port 1 (a fake node stopped here would free a port that another test's may take).
        let down = "http://127.0.0.1:1"
        let waiting = try Self.standby(active: nil)
        let outdated = try Self.standby(active: down)
        // Naming no node: the standby, the node that is down, then the standby again after its Retry-After.
        let client = Self.client([waiting.url, down])
        await #expect(throws: NodeClientError.self) { try await client.flow("f1") }
        try #require(waiting.requests.count == 3, "five attempts: standby, down, standby, down, standby")
        #expect(waiting.requests[1].at - waiting.requests[0].at >= .seconds(1), "Retry-After is a lower bound")
        // Naming the node that is down: its answer is out of date, and it is asked again (no lower bound).
        let following = Self.client([outdated.url])
        await #expect(throws: NodeClientError.self) { try await following.flow("f1") }
        #expect(outdated.requests.count == 3, "five attempts: standby, the node it named, standby, ...")
        try await client.shutdown()
        try await following.shutdown()
    }

    @Test func aWatchResumesOnTheActiveNodeAfterTheLastEventItSaw() async throws {
        // The node that served the stream goes away after one event; the address after it is a
        // standby, which names the new active node.
        let first = try FakeNode { _ in
            .init(status: 200, headers: [("Content-Type", "text/event-stream")],
                  body: "id: 1\nevent: progress\ndata: {\"flowId\":\"f1\",\"sequence\":1,\"step\":\"one\"}\n\n")
        }
        let active = try FakeNode { request in
            guard request.path.hasSuffix("/events") else {
                return .init(status: 200, headers: [("Content-Type", "application/json")], body: Self.flowJSON)
            }
            return .init(status: 200, headers: [("Content-Type", "text/event-stream")],
                         body: "id: 1:completed:0\nevent: status\ndata: {\"attempts\":0,\"flowId\":\"f1\",\"status\":\"completed\"}\n\n")
        }
        let standby = try Self.standby(active: active.url)
        let client = Self.client([first.url, standby.url])
        let seen = Seen()
        let flow = try await client.watch("f1") { seen.add($0.step ?? $0.status ?? "?") }
        #expect(flow.status == "completed")
        #expect(seen.all == ["one", "completed"])
        #expect(first.requests.first?.headers["last-event-id"] == nil)
        let resumed = try #require(active.requests.first { $0.path.hasSuffix("/events") })
        #expect(resumed.headers["last-event-id"] == "1")
        #expect(standby.requests.first?.headers["last-event-id"] == "1")
        try await client.shutdown()
    }
}

final class Seen: Sendable {
    private let state = Mutex<[String]>([])
    func add(_ item: String) { state.withLock { $0.append(item) } }
    var all: [String] { state.withLock { $0 } }
}
