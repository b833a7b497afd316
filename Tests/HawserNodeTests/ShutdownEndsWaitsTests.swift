import AsyncHTTPClient
import Foundation
import HawserClient
import HawserTestSupport
import NIOCore
import Testing

/// SIGTERM ends the waits that the HTTP server, which finishes its requests before the flow
/// engine stops, would otherwise wait for (found from outside: an event stream or a long poll of
/// a flow that ran on held the shutdown for the flow's whole life, 75 s and counting).
@Suite(.timeLimit(.minutes(3))) struct ShutdownEndsWaitsTests {
    @Test func anEventStreamOfAFlowThatRunsOnEndsAtSIGTERM() async throws {
        let dir = try TemporaryDirectory()
        // A notary nobody answers at: the flow asks again and again, for as long as the test runs.
        try writeRemoteNodeFiles(in: dir.path, urls: ["http://127.0.0.1:1"])
        let (node, port) = try await HawserProcess.node(config: dir.path + "/node.json")
        let base = "http://127.0.0.1:\(port)"
        let client = NodeClient(urls: [base], username: "ops", password: "secret")
        let started = try await client.startFlow("IssueTokens", arguments: Array(#"{"owner":"O=Alice","amount":10}"#.utf8))
        try await client.shutdown()
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await Self.followUntilSIGTERM(base + "/v1/flows/\(started.id)/events", node: node, http: http)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    /// Reads the event stream until the flow waits for the notary, then sends SIGTERM: the stream
    /// ends and the node exits cleanly; before, it ran on until the bound's SIGKILL.
    static func followUntilSIGTERM(_ url: String, node: HawserProcess, http: HTTPClient) async throws {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Basic " + Data("ops:secret".utf8).base64EncodedString())
        let response = try await http.execute(request, timeout: .seconds(120))
        #expect(response.status == .ok)
        var body = response.body.makeAsyncIterator()
        var seen = ""
        while !seen.contains("notarising") {
            guard let chunk = try await body.next() else { break }
            seen += String(buffer: chunk)
        }
        #expect(seen.contains("notarising"), "the flow waits for the notary: \(seen)")

        async let status = node.terminate(within: .seconds(60))
        // A node killed at the bound breaks the stream: that ends it too, and the status says why.
        while let chunk = try? await body.next() { seen += String(buffer: chunk) }
        #expect(await status == 0, "\(seen)")
    }
}
