import Foundation
import HawserClient
import HawserNode
import HawserTestSupport
import Logging
import Testing

/// `NodeClient` against a real node on loopback: addresses that do not answer are skipped, and a
/// retried start names the flow the first attempt started.
@Suite(.timeLimit(.minutes(10))) struct NodeClientFailoverTests {
    @Test(.timeLimit(.minutes(1))) func aClientFailsOverToTheNodeThatAnswers() async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let ports = AsyncStream.makeStream(of: Int.self)
        let (app, parts) = try await Node.application(configuration: try NodeConfiguration.load(dir.path + "/node.json"),
                                                baseDirectory: dir.path, logger: quietLogger,
                                                onListening: { ports.continuation.yield($0) })
        // Nothing listens on `dead`: a free port picked and released.
        let dead = try FreePorts.take(1)[0]
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            defer { group.cancelAll() }
            var iterator = ports.stream.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let client = NodeClient(urls: ["http://127.0.0.1:\(dead)", "http://127.0.0.1:\(port)"],
                                    username: "ops", password: "secret",
                                    retryPolicy: RetryPolicy(maxAttempts: 4, baseBackoff: .milliseconds(1),
                                                             maxBackoff: .milliseconds(5)))
            let arguments = Array("{\"owner\":\"O=Alice\",\"amount\":5}".utf8)
            let flow = try await client.run("IssueTokens", arguments: arguments, clientRequestId: "order-7")
            #expect(flow.status == "completed")
            #expect(flow.hasEnded)
            // Running again with the same client request id (a retry after a lost answer) starts nothing new.
            #expect(try await client.run("IssueTokens", arguments: arguments, clientRequestId: "order-7").id == flow.id)
            #expect(try await client.flow(clientRequestId: "order-7")?.id == flow.id)
            #expect(try await parts.engine.list().count == 1)
            // A client whose every address is dead gives up with the last error.
            let lost = NodeClient(urls: ["http://127.0.0.1:\(dead)"], username: "ops", password: "secret",
                                  retryPolicy: RetryPolicy(maxAttempts: 2, baseBackoff: .milliseconds(1)))
            await #expect(throws: NodeClientError.self) { try await lost.run("IssueTokens", arguments: arguments) }
            try await lost.shutdown()
            try await client.shutdown()
        }
    }
}
