import Foundation
import HawserWire
@testable import HawserNode
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// The bytes of bodies a server decodes at once (`BodyBudget`, applied by `EdgeMiddleware`):
/// bodies held by requests not yet answered count, and one that does not fit beside them is
/// answered `overloaded` before its handler runs.
@Suite(.timeLimit(.minutes(2))) struct BodyBudgetTests {
    /// Holds each request that reaches it until let go, so that its body stays in flight.
    final class Gate: Sendable {
        private let arrivals = AsyncStream.makeStream(of: Void.self)
        private let waiting = Mutex<[CheckedContinuation<Void, Never>]?>([])

        func hold() async {
            arrivals.continuation.yield()
            await withCheckedContinuation { continuation in
                let open = waiting.withLock { waiting in
                    guard waiting != nil else { return true }
                    waiting?.append(continuation)
                    return false
                }
                if open { continuation.resume() }
            }
        }

        /// Returns once a request has reached `hold()`.
        func arrived() async {
            var iterator = arrivals.stream.makeAsyncIterator()
            _ = await iterator.next()
        }

        func open() {
            for continuation in waiting.withLock({ waiting in defer { waiting = nil }; return waiting ?? [] }) { continuation.resume() }
        }
    }

    @Test func aBodyThatDoesNotFitBesideThoseInFlightIsAnsweredOverloadedUndecoded() async throws {
        let gate = Gate()
        let decoded = Mutex(0)
        let router = Router()
        router.add(middleware: EdgeMiddleware<BasicRequestContext, APIError>(
            routes: [APIRoute(.post, "/hold"), APIRoute(.post, "/read")], server: "notary",
            bodyLimit: ("limits.maxBodyBytes", 1024), inFlight: ("limits.maxBodyBytesInFlight", BodyBudget(limit: 1500))))
        router.post("/hold") { request, _ in
            let body = try await request.body.collect(upTo: 1024)
            await gate.hold()
            return "\(body.readableBytes)"
        }
        router.post("/read") { request, _ in
            decoded.withLock { $0 += 1 }
            return "\(try await request.body.collect(upTo: 1024).readableBytes)"
        }
        let app = Application(router: router)
        try await app.test(.router) { client in
            func post(_ path: String, _ bytes: Int) async throws -> (status: HTTPResponse.Status, body: String, retryAfter: String?) {
                try await client.execute(uri: path, method: .post, body: ByteBuffer(repeating: 0x61, count: bytes)) { response in
                    (response.status, String(buffer: response.body), response.headers[.retryAfter])
                }
            }
            async let held = post("/hold", 1000)
            await gate.arrived()
            // 1,000 bytes are held: 600 more do not fit in 1,500, and the handler never runs.
            let refused = try await post("/read", 600)
            #expect(refused.status == .serviceUnavailable && refused.retryAfter == "1")
            #expect(refused.body.contains("\"overloaded\"") && refused.body.contains("limits.maxBodyBytesInFlight, 1500 bytes"), "\(refused.body)")
            #expect(decoded.withLock { $0 } == 0)
            // 500 do, and are given back once answered: another 500 fit again.
            #expect(try await post("/read", 500) == (.ok, "500", nil))
            #expect(try await post("/read", 500) == (.ok, "500", nil))
            gate.open()
            #expect(try await held == (.ok, "1000", nil))
            // The held body's bytes were given back with its answer.
            #expect(try await post("/read", 1024) == (.ok, "1024", nil))
            #expect(try await post("/hold", 1024).status == .ok)
        }
    }
}
