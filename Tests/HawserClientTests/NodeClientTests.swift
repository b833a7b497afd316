@testable import HawserClient
import NIOCore
import Testing

@Suite struct NodeClientTests {
    @Test func serverSentEventsSplitAcrossChunks() {
        var parser = ServerSentEvents()
        #expect(parser.feed(ByteBuffer(string: "event: progress\ndata: {\"a\"")) == [])
        #expect(parser.feed(ByteBuffer(string: ":1}\n\nevent: status\ndata: {\"b\":2}\n\n")) == ["{\"a\":1}", "{\"b\":2}"])
        #expect(parser.feed(ByteBuffer(string: ": comment only\n\n")) == [])
    }

    @Test func onlyUnavailabilityIsRetried() {
        #expect(NodeClient.isRetryable(NodeClientError.api(status: 503, code: "draining", message: "")))
        #expect(!NodeClient.isRetryable(NodeClientError.api(status: 401, code: "unauthenticated", message: "")))
        #expect(!NodeClient.isRetryable(NodeClientError.api(status: 404, code: "flow_not_found", message: "")))
        #expect(NodeClient.isRetryable(NodeClientError.unexpectedResponse(status: 0, body: "stream ended")))
        #expect(!NodeClient.isRetryable(CancellationError()))
    }
}
