@testable import HawserClient
import NIOCore
import Testing

@Suite struct NodeClientTests {
    @Test func serverSentEventsSplitAcrossChunksWithTheirIds() {
        var parser = ServerSentEvents()
        #expect(parser.feed(ByteBuffer(string: "id: 3\nevent: progress\ndata: {\"a\"")) == [])
        #expect(parser.feed(ByteBuffer(string: ":1}\n\nevent: status\ndata: {\"b\":2}\n\n"))
                == [.init(id: "3", data: "{\"a\":1}"), .init(id: nil, data: "{\"b\":2}")])
        #expect(parser.feed(ByteBuffer(string: ": comment only\n\n")) == [])
    }

    @Test func onlyUnavailabilityIsRetried() {
        #expect(NodeClient.isRetryable(NodeClientError.api(status: 503, code: "draining", message: "")))
        #expect(!NodeClient.isRetryable(NodeClientError.api(status: 401, code: "unauthenticated", message: "")))
        #expect(!NodeClient.isRetryable(NodeClientError.api(status: 404, code: "flow_not_found", message: "")))
        #expect(NodeClient.isRetryable(NodeClientError.unexpectedResponse(status: 0, body: "stream ended")))
        #expect(!NodeClient.isRetryable(CancellationError()))
    }

    @Test func aStandbysAnswerNamesTheActiveNodeAndTheWait() {
        let standby = #"{"error":{"code":"standby","message":"this node is a standby","active":"http://10.0.0.1:8090/"}}"#
        #expect(NodeClient.error(status: 503, retryAfter: "1", body: ByteBuffer(string: standby)) as? RetryHints == RetryHints(
            error: .api(status: 503, code: "standby", message: "this node is a standby"), active: "http://10.0.0.1:8090", retryAfter: .seconds(1)))
        // No node active yet, an address that is not one, a date: no hint taken from them.
        let none = #"{"error":{"code":"standby","message":"no node is active"}}"#
        #expect((NodeClient.error(status: 503, retryAfter: "Wed, 21 Oct 2026 07:28:00 GMT", body: ByteBuffer(string: none)) as? RetryHints)
                == RetryHints(error: .api(status: 503, code: "standby", message: "no node is active"), active: nil, retryAfter: nil))
        let odd = #"{"error":{"code":"standby","message":"m","active":"ftp://10.0.0.1"}}"#
        #expect((NodeClient.error(status: 503, retryAfter: nil, body: ByteBuffer(string: odd)) as? RetryHints)?.active == nil)
        // Only a standby names the way; refusals are not retried at all.
        let draining = #"{"error":{"code":"draining","message":"m","active":"http://10.0.0.1:8090"}}"#
        #expect((NodeClient.error(status: 503, retryAfter: nil, body: ByteBuffer(string: draining)) as? RetryHints)?.active == nil)
        let refused = #"{"error":{"code":"forbidden","message":"m"}}"#
        #expect(NodeClient.error(status: 403, retryAfter: "5", body: ByteBuffer(string: refused)) as? NodeClientError
                == .api(status: 403, code: "forbidden", message: "m"))
    }

    @Test func theNextAddressIsTheActiveNodeNamedElseTheNextOfTheList() {
        var targets = FailoverTargets(["http://a", "http://b", "http://c"])
        #expect(targets.current == "http://a")
        targets.failed(active: nil)
        #expect(targets.current == "http://b")
        targets.failed(active: "http://z")  // not in the list: followed all the same
        #expect(targets.current == "http://z")
        targets.failed(active: "http://z")  // the active node named is the one that failed
        #expect(targets.current == "http://c")
        targets.failed(active: "http://a")  // in the list: taken from there
        #expect(targets.current == "http://a")
        #expect(targets == FailoverTargets(["http://a", "http://b", "http://c"]))
        targets.failed(active: "http://a")
        #expect(targets.current == "http://b")
    }
}
