@testable import HawserClient
import NIOCore
import Testing

@Suite(.timeLimit(.minutes(10))) struct NodeClientTests {
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
        // Said as the answer's sentence (a CLI printed the hints' fields, found from outside).
        let hints = NodeClient.error(status: 503, retryAfter: "1", body: ByteBuffer(string: standby))
        #expect("\(hints)" == "\(NodeClientError.api(status: 503, code: "standby", message: "this node is a standby"))")
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
        let now = ContinuousClock.now
        var targets = FailoverTargets(["http://a", "http://b", "http://c"])
        func failed(active: String?) { targets.failed(active: active, retryAfter: nil, answered: true, now: now) }
        #expect(targets.current == "http://a")
        failed(active: nil)
        #expect(targets.current == "http://b")
        failed(active: "http://z")  // not in the list: followed all the same
        #expect(targets.current == "http://z")
        failed(active: "http://z")  // the active node named is the one that failed
        #expect(targets.current == "http://c")
        failed(active: "http://a")  // in the list: taken from there
        #expect(targets.current == "http://a" && targets.followed == nil)
        failed(active: "http://a")
        #expect(targets.current == "http://b")
    }

    /// A `Retry-After` holds for the node that sent it; a standby's is void once the node it
    /// named cannot be reached (its answer is out of date). Failed before: every answer's
    /// `Retry-After` held for whichever node came next.
    @Test func aRetryAfterHoldsForItsNodeUntilTheNodeItNamedIsFoundDown() {
        let t0 = ContinuousClock.now
        func at(_ ms: Int) -> ContinuousClock.Instant { t0 + .milliseconds(ms) }
        var targets = FailoverTargets(["http://a", "http://b"])
        // A is down: on to B at once.
        targets.failed(active: nil, retryAfter: nil, answered: false, now: at(0))
        #expect(targets.current == "http://b" && targets.wait(now: at(0)) == .zero)
        // B stands by and names A: A is asked at once; B's Retry-After is B's.
        targets.failed(active: "http://a", retryAfter: .seconds(1), answered: true, now: at(10))
        #expect(targets.current == "http://a" && targets.wait(now: at(10)) == .zero)
        // A cannot be reached: B's answer was out of date, and B is asked again without waiting.
        targets.failed(active: nil, retryAfter: nil, answered: false, now: at(20))
        #expect(targets.current == "http://b" && targets.wait(now: at(20)) == .zero)
        // B names no node (it is taking over): its Retry-After holds when the list comes back to it.
        targets.failed(active: nil, retryAfter: .seconds(1), answered: true, now: at(30))
        #expect(targets.current == "http://a" && targets.wait(now: at(30)) == .zero)
        targets.failed(active: nil, retryAfter: nil, answered: false, now: at(40))
        #expect(targets.current == "http://b" && targets.wait(now: at(40)) == .milliseconds(990))
        // B names A, and A answers (an error, not a standby): B's Retry-After still holds.
        targets.failed(active: "http://a", retryAfter: .seconds(1), answered: true, now: at(1_100))
        targets.failed(active: nil, retryAfter: nil, answered: true, now: at(1_200))
        #expect(targets.current == "http://b" && targets.wait(now: at(1_200)) == .milliseconds(900))
        #expect(targets.wait(now: at(2_200)) == .zero)
    }
}
