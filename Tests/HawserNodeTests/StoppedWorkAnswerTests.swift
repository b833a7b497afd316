import Foundation
@testable import HawserNode
import Hummingbird
import HummingbirdTesting
import Testing

/// Work stopped under a request (a `CancellationError` that is not the request's own: a hot-hot
/// partition released mid-commit) is answered 503 `standby`, which a client retries; it was a 500
/// `internal_error`, which a client must not retry (seen once in the rolling upgrade).
@Suite(.timeLimit(.minutes(1))) struct StoppedWorkAnswerTests {
    @Test func workStoppedUnderARequestIsAnsweredStandby() async throws {
        let router = Router()
        router.add(middleware: EdgeMiddleware<BasicRequestContext, NodeAPIError>(
            routes: [APIRoute(.post, "/stopped")], server: "node", bodyLimit: ("maxBodyBytes", 1024),
            inFlight: ("maxBodyBytesInFlight", BodyBudget(limit: 1024))))
        router.add(middleware: RetryableFailureAnswer())
        router.post("/stopped") { _, _ -> String in throw CancellationError() }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/stopped", method: .post) { response in
                #expect(response.status == .serviceUnavailable && response.headers[.retryAfter] == "1")
                let body = String(buffer: response.body)
                #expect(body.contains(#""code":"standby""#) && body.contains("send the same request again"), "\(body)")
            }
        }
    }
}
