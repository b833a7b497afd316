import AsyncHTTPClient
import Foundation
import HawserClient
import HawserTestSupport
import NIOCore
import Testing

/// `GET /v1/flows/{id}/events` on a `hawser node run` process: every event has an id, and a
/// stream asked for with `Last-Event-ID` is exactly the rest of the stream after that event.
@Suite(.timeLimit(.minutes(2))) struct NodeEventResumeTests {
    struct Event: Equatable {
        var id: String
        var event: String
        var data: String
    }

    /// The whole stream, read to its end, split into events.
    static func stream(_ url: String, lastEventID: String? = nil, http: HTTPClient) async throws -> (status: UInt, events: [Event], body: String) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Basic " + Data("ops:secret".utf8).base64EncodedString())
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        let events = body.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { block in
            var fields: [String: String] = [:]
            for line in block.split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[String(line[..<colon])] = String(line[line.index(after: colon)...].drop { $0 == " " })
            }
            return Event(id: fields["id"] ?? "", event: fields["event"] ?? "", data: fields["data"] ?? "")
        }
        return (response.status.code, events, body)
    }

    @Test func aStreamResumedAfterAnyEventIsExactlyTheRest() async throws {
        let directory = try TemporaryDirectory()
        try writeNodeFiles(in: directory.path)
        let (node, port) = try await HawserProcess.node(config: directory.path + "/node.json")
        let base = "http://127.0.0.1:\(port)"
        let client = NodeClient(urls: [base], username: "ops", password: "secret")
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        _ = try await client.run("IssueTokens", arguments: Array(#"{"owner":"O=Alice","amount":10}"#.utf8))
        let moved = try await client.run("MoveTokens", arguments: Array(#"{"owner":"O=Alice","newOwner":"O=Bob","amount":4}"#.utf8))
        #expect(moved.status == "completed")

        let url = base + "/v1/flows/\(moved.id)/events"
        let whole = try await Self.stream(url, http: http)
        #expect(whole.status == 200)
        #expect(whole.events.map(\.event) == ["progress", "progress", "progress", "status"], "\(whole.body)")
        #expect(whole.events.last?.id.hasSuffix(":completed:0") == true, "\(whole.body)")
        #expect(Set(whole.events.map(\.id)).count == whole.events.count, "every event has its own id")
        for (index, seen) in whole.events.enumerated() {
            let rest = try await Self.stream(url, lastEventID: seen.id, http: http)
            #expect(rest.status == 200)
            #expect(rest.events == Array(whole.events.dropFirst(index + 1)), "after \(seen.id): \(rest.body)")
        }

        let refused = try await Self.stream(url, lastEventID: "seven", http: http)
        #expect(refused.status == 400)
        #expect(refused.body.contains("\"invalid_last_event_id\""), "\(refused.body)")

        try await http.shutdown()
        try await client.shutdown()
        #expect(await node.terminate() == 0)
    }
}
