import AsyncHTTPClient
import Foundation
import HawserCore
import HawserWire
import NIOCore
import NIOFoundationCompat
import SwiftProtobuf
import Synchronization

/// A client for the notary's HTTP API (protobuf on the wire) or its gRPC service (base URLs
/// `grpc://host:port`: every request to one address shares one `NotariseStream` call).
///
/// - Retries and failover: connection errors, timeouts and 503 answers (`not_ready`, `timeout`,
///   `shutting_down`, `standby`, `overloaded`, `database_unavailable`) are retried with the same request on the next base URL, after an
///   exponential back-off with jitter, as `RetryPolicy` says. A hot-warm standby's answer sends the
///   next attempt to the active notary it names instead, after at least its `Retry-After`
///   (`FailoverTargets`, the rule `NodeClient` follows too). This is safe because the notary is
///   idempotent per transaction id. The URL that last worked is tried first by later calls.
/// - Refusals (4xx and 500) are thrown at once as `APIError`, decoded from the body.
/// - Verification: every answer is checked (transaction id, Merkle proof, notary signature) before
///   it is returned; one that fails is thrown as `NotaryClientError.invalidAnswer`.
/// - Over gRPC the same rules hold, with a refusal's `Error` read from the result message and a
///   failed call or ended stream in place of a connection error. A standby's `active` names an
///   HTTP address, so a gRPC client does not follow it: it asks its next address.
///   `notarise(batch:)` and `answer(for:)` are HTTP only (`invalidConfiguration` over gRPC).
public final class NotaryClient: Sendable {
    /// The base URLs, e.g. `http://127.0.0.1:8080`, without a trailing slash.
    public let baseURLs: [String]
    public let retryPolicy: RetryPolicy
    private let http: HTTPClient
    private let ownsHTTPClient: Bool
    private let cacheCapacity: Int
    private let state: Mutex<State>
    /// The gRPC channel of each `grpc://` base URL (none for an HTTP client).
    let channels: [String: GRPCNotaryChannel]

    private struct State {
        var targets: FailoverTargets
        var verifier: AnswerVerifier?
    }

    /// A retryable answer with what it says about the next attempt (a standby's active notary,
    /// `Retry-After`); only `withRetries` sees it, and reports `error`.
    struct Hinted: Error {
        var error: APIError
        var active: String?
        var retryAfter: Duration?
    }

    static let protobuf = "application/x-protobuf"
    static let json = "application/json"
    /// Largest response body read (a full batch of answers fits easily).
    static let maxResponseBytes = 64 << 20

    /// - Parameters:
    ///   - urls: the notary's base URLs (several replicas or front ends of one notary).
    ///   - notaryKey: the notary's public key, pinned. If nil it is fetched once from `/v1/identity`.
    ///   - httpClient: an HTTP client the caller owns and shuts down. If nil the notary client
    ///     creates its own (set up for quick failover); call `shutdown()` then.
    ///   - retryPolicy: attempts, back-off and deadline.
    ///   - verificationCacheSize: how many verified (root, signature) pairs to remember.
    public init(urls: [String], notaryKey: PublicKey? = nil, httpClient: HTTPClient? = nil,
                retryPolicy: RetryPolicy = .default, verificationCacheSize: Int = 1024) throws(NotaryClientError) {
        let addresses = try Self.parse(urls)
        var channels = [String: GRPCNotaryChannel]()
        for address in addresses {
            guard case .grpc(let base, let host, let port) = address else { continue }
            do { channels[base] = try GRPCNotaryChannel(address: base, host: host, port: port) } catch {
                throw .invalidConfiguration("`\(base)`: \(error)")
            }
        }
        self.channels = channels
        let bases = addresses.map(\.base)
        self.baseURLs = bases
        self.retryPolicy = retryPolicy
        self.cacheCapacity = verificationCacheSize
        if let httpClient {
            self.http = httpClient
            self.ownsHTTPClient = false
        } else {
            var configuration = HTTPClient.Configuration()
            configuration.timeout.connect = .seconds(1)
            // Fail a refused connection at once and let the retry policy move to the next URL.
            configuration.connectionPool.retryConnectionEstablishment = false
            self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            self.ownsHTTPClient = true
        }
        var initial = State(targets: FailoverTargets(bases))
        if let notaryKey { initial.verifier = AnswerVerifier(notaryKey: notaryKey, cacheCapacity: verificationCacheSize) }
        self.state = Mutex(initial)
    }

    /// `url` as a base URL (without trailing slashes), or `invalidConfiguration` if it is not an
    /// http(s) URL with a host. The check for HTTP addresses in configuration files (advertised
    /// addresses, health URLs, a standby's hint).
    public static func baseURL(_ url: String) throws(NotaryClientError) -> String {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        guard let parsed = URL(string: base), let scheme = parsed.scheme?.lowercased(),
              scheme == "http" || scheme == "https", parsed.host != nil else {
            throw .invalidConfiguration("`\(url)` is not an http(s) base URL such as http://127.0.0.1:8080")
        }
        return base
    }

    /// The notary addresses `init` takes, each as `baseURL` or a `grpc://HOST:PORT` address of a
    /// notary's gRPC service, all of one kind; or `invalidConfiguration`. The check `init` makes,
    /// for configuration files.
    public static func addresses(_ urls: [String]) throws(NotaryClientError) -> [String] {
        try parse(urls).map(\.base)
    }

    /// A notary address as `init` reads it: an HTTP base URL, or a gRPC service's host and port.
    enum Address {
        case http(String)
        case grpc(String, host: String, port: Int)

        /// The address as given, without trailing slashes: what `baseURLs` lists and failover walks.
        var base: String {
            switch self {
            case .http(let base), .grpc(let base, _, _): base
            }
        }
    }

    /// Reads every address once: the one parse behind `addresses` and `init`.
    static func parse(_ urls: [String]) throws(NotaryClientError) -> [Address] {
        guard !urls.isEmpty else { throw .invalidConfiguration("at least one base URL is needed") }
        var addresses = [Address]()
        for url in urls {
            var base = url
            while base.hasSuffix("/") { base.removeLast() }
            if base.lowercased().hasPrefix("grpc://") {
                guard let parsed = URL(string: base), let host = parsed.host, let port = parsed.port, parsed.path.isEmpty,
                      parsed.query == nil else {
                    throw .invalidConfiguration("`\(url)` is not a gRPC address: grpc://HOST:PORT, with the port and nothing after it")
                }
                addresses.append(.grpc(base, host: host, port: port))
            } else {
                do { addresses.append(.http(try baseURL(url))) } catch {
                    throw .invalidConfiguration("`\(url)` is not an http(s) base URL such as http://127.0.0.1:8080, nor grpc://HOST:PORT")
                }
            }
        }
        let grpc = addresses.filter { if case .grpc = $0 { true } else { false } }
        guard grpc.isEmpty || grpc.count == addresses.count else {
            throw .invalidConfiguration("give either http(s) or grpc base URLs, not both: one client speaks one protocol")
        }
        return addresses
    }

    /// Shuts down the HTTP client if this notary client created it, and closes its gRPC channels.
    public func shutdown() async throws {
        for channel in channels.values { await channel.close() }
        if ownsHTTPClient { try await http.shutdown() }
    }

    // MARK: - The API

    /// Notarises one request and returns the notary's verified, signed answer. Committed, conflict
    /// and time-window-invalid are all answers; refusals are thrown as `APIError`.
    public func notarise(_ request: NotarisationRequest) async throws -> NotarisationAnswer {
        let verifier = try await verifier()
        if !channels.isEmpty { return try await notariseOverGRPC(request, verifier: verifier) }
        let body = try request.proto.serializedBytes() as [UInt8]
        return try await withRetries { base, timeout in
            let response = try await self.call(post: true, base + "/v1/notarise", body: body, timeout: timeout)
            let answer = try Self.decodeAnswer(response.body, txId: request.txId)
            try Self.check(answer, for: request.txId, with: verifier)
            return answer
        }
    }

    /// Notarises many requests with one call: one result per request, in order. Items refused by the
    /// notary are `.failure(APIError)`; items that failed with a retryable error are sent again (alone)
    /// while the retry policy allows, and keep their last error otherwise. Throws for failures of the
    /// whole call (e.g. `batch_too_large`, the notary unreachable) and for any invalid answer.
    public func notarise(batch requests: [NotarisationRequest]) async throws -> [Result<NotarisationAnswer, APIError>] {
        guard !requests.isEmpty else { return [] }
        try httpOnly("notarise(batch:)")
        let verifier = try await verifier()
        var results = [Result<NotarisationAnswer, APIError>?](repeating: nil, count: requests.count)
        var pending = Array(requests.indices)
        do {
            try await withRetries { base, timeout in
                var message = Hawser_V1_NotarisationBatchRequest()
                message.requests = pending.map { requests[$0].proto }
                let response = try await self.call(post: true, base + "/v1/notarise/batch", body: try message.serializedBytes(),
                                                   timeout: timeout)
                let decoded: Hawser_V1_NotarisationBatchResponse
                do { decoded = try Hawser_V1_NotarisationBatchResponse(serializedBytes: Array(buffer: response.body)) } catch {
                    throw NotaryClientError.invalidAnswer(txId: nil, reason: "the batch response does not decode: \(error)")
                }
                guard decoded.results.count == pending.count else {
                    throw NotaryClientError.invalidAnswer(
                        txId: nil, reason: "the batch response holds \(decoded.results.count) results for \(pending.count) requests")
                }
                var retry = [Int]()
                for (index, item) in zip(pending, decoded.results) {
                    let txId = requests[index].txId
                    switch item.result {
                    case .answer(let proto)?:
                        let answer: NotarisationAnswer
                        do { answer = try NotarisationAnswer(proto: proto) } catch {
                            throw NotaryClientError.invalidAnswer(txId: txId, reason: "the answer does not decode: \(error)")
                        }
                        try Self.check(answer, for: txId, with: verifier)
                        results[index] = .success(answer)
                    case .error(let proto)?:
                        let error = Self.apiError(proto, status: 200)
                        results[index] = .failure(error)
                        if error.code.isRetryable { retry.append(index) }
                    case nil:
                        throw NotaryClientError.invalidAnswer(txId: txId, reason: "a batch result holds neither answer nor error")
                    }
                }
                pending = retry
                if !retry.isEmpty { throw PartialBatch(retryable: retry.count) }
            }
        } catch NotaryClientError.unavailable(_, let last as PartialBatch) {
            _ = last  // Out of attempts: the retryable items keep their last error.
        }
        return results.map { $0! }
    }

    /// The recorded, verified outcome of `txId`. Throws `APIError` with code `transaction_not_found`
    /// if the notary has none.
    public func answer(for txId: SecureHash) async throws -> NotarisationAnswer {
        try httpOnly("answer(for:)")
        let verifier = try await verifier()
        return try await withRetries { base, timeout in
            let response = try await self.call(post: false, base + "/v1/transactions/" + txId.hex, body: nil,
                                               timeout: timeout)
            let answer = try Self.decodeAnswer(response.body, txId: txId)
            try Self.check(answer, for: txId, with: verifier)
            return answer
        }
    }

    /// The notary's name and public key, as the server states them (`GET /v1/identity`).
    public func identity() async throws -> Party {
        if !channels.isEmpty { return try await identityOverGRPC() }
        return try await withRetries { base, timeout in
            let response = try await self.call(post: false, base + "/v1/identity", body: nil, timeout: timeout,
                                               accept: Self.json)
            guard let identity = try? JSONDecoder().decode(NotaryIdentityJSON.self, from: Data(buffer: response.body)),
                  identity.signatureScheme == "ed25519", let key = PublicKey(base64: identity.publicKey) else {
                throw NotaryClientError.unexpectedResponse(status: 200, body: Self.excerpt(response.body))
            }
            return Party(name: identity.name, publicKey: key)
        }
    }

    /// The key answers are verified with: the pinned one, or the one fetched from `/v1/identity`.
    public func notaryKey() async throws -> PublicKey { try await verifier().notaryKey }

    static func check(_ answer: NotarisationAnswer, for txId: SecureHash, with verifier: AnswerVerifier) throws(NotaryClientError) {
        do { try verifier.verify(answer, for: txId) } catch { throw .invalidAnswer(txId: error.txId, reason: error.reason) }
    }

    /// The answer verifier in use (its `signatureChecks` shows how well the cache works).
    public func verifier() async throws -> AnswerVerifier {
        if let verifier = state.withLock({ $0.verifier }) { return verifier }
        let key = try await identity().publicKey
        let capacity = cacheCapacity
        return state.withLock { state in
            if let verifier = state.verifier { return verifier }
            let verifier = AnswerVerifier(notaryKey: key, cacheCapacity: capacity)
            state.verifier = verifier
            return verifier
        }
    }

    // MARK: - Retries and failover

    /// A batch in which some items failed with a retryable error.
    struct PartialBatch: Error, CustomStringConvertible {
        var retryable: Int
        var description: String { "\(retryable) batch item(s) failed with a retryable error" }
    }

    /// Runs `attempt` (given a base URL and the time it may take) until it succeeds, fails with a
    /// non-retryable error, or the policy's attempts or deadline run out (then `unavailable`).
    func withRetries<T>(_ attempt: (String, Duration) async throws -> T) async throws -> T {
        let clock = ContinuousClock()
        let deadline = clock.now + retryPolicy.deadline
        var attempts = 0
        while true {
            attempts += 1
            let base = state.withLock { $0.targets.current }
            do {
                return try await attempt(base, min(retryPolicy.attemptTimeout, deadline - clock.now))
            } catch {
                guard Self.isRetryable(error) else { throw error }
                if Task.isCancelled { throw CancellationError() }
                let hinted = error as? Hinted
                // Whether a server answered (else it could not be reached, or not in time).
                let answered = hinted != nil || error is APIError || error is PartialBatch || error is NotaryClientError
                // Fail over: later calls start at the next URL too, unless another call moved on already.
                let wait = state.withLock { state -> Duration in
                    let now = ContinuousClock.now
                    if state.targets.current == base {
                        state.targets.failed(active: hinted?.active, retryAfter: hinted?.retryAfter, answered: answered, now: now)
                    }
                    return state.targets.wait(now: now)
                }
                let pause = max(retryPolicy.backoff(beforeRetry: attempts), wait)
                guard attempts < retryPolicy.maxAttempts, clock.now + pause < deadline else {
                    throw NotaryClientError.unavailable(attempts: attempts, lastError: hinted?.error ?? error)
                }
                try await Task.sleep(for: pause)
            }
        }
    }

    static func isRetryable(_ error: any Error) -> Bool {
        switch error {
        case is CancellationError: false
        case let error as APIError: error.code.isRetryable
        case is PartialBatch, is Hinted: true
        case NotaryClientError.unexpectedResponse(let status, _): [502, 503, 504].contains(status)
        case is NotaryClientError: false
        case let error as HTTPClientError:
            error != .cancelled && error != .invalidURL && error != .emptyHost && error != .emptyScheme
        default: true  // connection refused, reset, closed: another attempt may well work
        }
    }

    // MARK: - HTTP

    struct RawResponse {
        var status: Int
        var contentType: String
        var body: ByteBuffer
    }

    /// One HTTP exchange. Returns 200 responses; throws `APIError` or `unexpectedResponse` otherwise.
    private func call(post: Bool, _ url: String, body: [UInt8]?, timeout: Duration,
                      accept: String = protobuf) async throws -> RawResponse {
        var request = HTTPClientRequest(url: url)
        request.method = post ? .POST : .GET
        request.headers.add(name: "Accept", value: accept)
        if let body {
            request.headers.add(name: "Content-Type", value: Self.protobuf)
            request.body = .bytes(body)
        }
        let response = try await http.execute(request, timeout: .nanoseconds(max(1, RetryPolicy.nanoseconds(timeout))))
        let bytes = try await response.body.collect(upTo: Self.maxResponseBytes)
        let raw = RawResponse(status: Int(response.status.code),
                              contentType: response.headers.first(name: "Content-Type") ?? "", body: bytes)
        guard raw.status == 200 else {
            let error = Self.error(from: raw)
            guard let api = error as? APIError, api.code.isRetryable else { throw error }
            throw Hinted(error: api, active: RetryHints.active(code: api.code.rawValue, named: api.active),
                         retryAfter: RetryHints.wait(retryAfter: response.headers.first(name: "Retry-After")))
        }
        return raw
    }

    /// The API error a non-200 response carries, or `unexpectedResponse` if it carries none.
    static func error(from response: RawResponse) -> any Error {
        let type = response.contentType.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        if type == protobuf, let proto = try? Hawser_V1_Error(serializedBytes: Array(buffer: response.body)),
           ErrorCode(rawValue: proto.code) != nil {
            return apiError(proto, status: response.status)
        }
        if type == json, let body = try? JSONDecoder().decode(ErrorBodyJSON.self, from: Data(buffer: response.body)),
           let code = ErrorCode(rawValue: body.error.code) {
            return APIError(code, body.error.message, active: body.error.active)
        }
        return NotaryClientError.unexpectedResponse(status: response.status, body: excerpt(response.body))
    }

    static func apiError(_ proto: Hawser_V1_Error, status: Int) -> APIError {
        guard let code = ErrorCode(rawValue: proto.code) else {
            return APIError(.internalError, "unknown error code `\(proto.code)`: \(proto.message)")
        }
        return APIError(code, proto.message, active: proto.active.isEmpty ? nil : proto.active)
    }

    static func decodeAnswer(_ body: ByteBuffer, txId: SecureHash) throws -> NotarisationAnswer {
        do {
            return try NotarisationAnswer(proto: Hawser_V1_NotarisationAnswer(serializedBytes: Array(buffer: body)))
        } catch {
            throw NotaryClientError.invalidAnswer(txId: txId, reason: "the answer does not decode: \(error)")
        }
    }

    static func excerpt(_ body: ByteBuffer) -> String {
        String(decoding: body.readableBytesView.prefix(200), as: UTF8.self)
    }
}
