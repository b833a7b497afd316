import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// Retries, failover and the HTTP calls of `NodeClient`.
extension NodeClient {
    /// Runs `attempt` against the current node until it succeeds, fails for good, or the retry
    /// policy is spent. Each retryable failure moves on (`FailoverTargets`) and pauses first.
    func withRetries<T>(_ attempt: (String, Duration) async throws -> T) async throws -> T {
        let clock = ContinuousClock()
        let deadline = clock.now + retryPolicy.deadline
        var attempts = 0
        while true {
            attempts += 1
            let target = targets.withLock { $0.current }
            do {
                return try await attempt(target, min(retryPolicy.attemptTimeout, deadline - clock.now))
            } catch {
                guard Self.isRetryable(error) else { throw error }
                failOver(after: error)
                let pause = pause(beforeRetry: attempts)
                guard attempts < retryPolicy.maxAttempts, clock.now + pause < deadline else {
                    // Which node: an operator whose address was wrong sees the one tried.
                    throw NodeClientError.unavailable(attempts: attempts, lastError: "\(target): \(errorText(error))")
                }
                try await Task.sleep(for: pause)
            }
        }
    }

    /// Moves to the node to ask next: the active node a standby named, or the next address.
    /// Every retryable answer is a `RetryHints`; any other error means no answer came.
    func failOver(after error: any Error) {
        let hints = error as? RetryHints
        targets.withLock { $0.failed(active: hints?.active, retryAfter: hints?.retryAfter, answered: hints != nil, now: .now) }
    }

    /// The back-off before retry number `retry`, but never less than what remains of the
    /// `Retry-After` of the node asked next.
    func pause(beforeRetry retry: Int) -> Duration {
        max(retryPolicy.backoff(beforeRetry: retry), targets.withLock { $0.wait(now: .now) })
    }

    static func isRetryable(_ error: any Error) -> Bool {
        switch error {
        case is CancellationError: false
        case let hints as RetryHints: isRetryable(hints.error)
        case NodeClientError.api(let status, _, _): [502, 503, 504].contains(status)
        case NodeClientError.unexpectedResponse(let status, _): status == 0 || [502, 503, 504].contains(status)
        case is NodeClientError, is DecodingError: false
        case let error as HTTPClientError: error != .cancelled && error != .invalidURL
        default: true  // connection refused, reset, closed
        }
    }

    func call(post: Bool, _ url: String, body: [UInt8]?, timeout: Duration) async throws -> Data {
        var request = HTTPClientRequest(url: url)
        request.method = post ? .POST : .GET
        request.headers.add(name: "Authorization", value: authorization)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        let response = try await http.execute(request, timeout: .nanoseconds(max(1, RetryPolicy.nanoseconds(timeout))))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        guard (200..<300).contains(response.status.code) else {
            throw Self.error(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After"), body: bytes)
        }
        return Data(buffer: bytes)
    }

    /// The error an answer stands for: a `NodeClientError`, wrapped in `RetryHints` when it is
    /// worth retrying, with the active node a standby named and the `Retry-After` it asked for.
    static func error(status: Int, retryAfter: String?, body: ByteBuffer) -> any Error {
        struct Body: Decodable {
            struct Detail: Decodable { var code: String; var message: String; var active: String? }
            var error: Detail
        }
        let decoded = try? JSONDecoder().decode(Body.self, from: Data(buffer: body))
        let error: NodeClientError = decoded.map { .api(status: status, code: $0.error.code, message: $0.error.message) }
            ?? .unexpectedResponse(status: status, body: String(decoding: body.readableBytesView.prefix(200), as: UTF8.self))
        guard isRetryable(error) else { return error }
        return RetryHints(error: error, active: RetryHints.active(code: decoded?.error.code, named: decoded?.error.active),
                          retryAfter: RetryHints.wait(retryAfter: retryAfter))
    }

    static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? segment
    }
}
