import AsyncHTTPClient
import Foundation
import HawserCore
import NIOCore
import NIOFoundationCompat
import Synchronization

/// A client of a node's RPC API (docs/node.md) with several node addresses, retries and failover.
/// A standby's answer sends the next attempt to the active node it names (`FailoverTargets`); a node
/// that answered with a `Retry-After` is not asked again before it has passed (unless the node it
/// named could not be reached). Every start carries a client request id (made up if the caller
/// gives none), so a start that is retried after a lost answer returns the flow the first attempt
/// started instead of a second one. `watch` re-attaches to a flow's events after a dropped
/// connection or a failover, resuming after the last event it saw (`Last-Event-ID`).
public final class NodeClient: Sendable {
    public let baseURLs: [String]
    public let retryPolicy: RetryPolicy
    let authorization: String
    let http: HTTPClient
    private let ownsHTTPClient: Bool
    let targets: Mutex<FailoverTargets>

    public init(urls: [String], username: String, password: String, retryPolicy: RetryPolicy = .default,
                httpClient: HTTPClient? = nil) {
        precondition(!urls.isEmpty, "a node client needs at least one URL")
        baseURLs = urls.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        targets = Mutex(FailoverTargets(baseURLs))
        self.retryPolicy = retryPolicy
        authorization = "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        if let httpClient {
            http = httpClient
            ownsHTTPClient = false
        } else {
            // Each watched flow holds a connection for its event stream: allow many per node.
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 512
            configuration.timeout.connect = .seconds(1)
            // Fail a refused connection at once and let the retry policy move to the next URL.
            configuration.connectionPool.retryConnectionEstablishment = false
            http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            ownsHTTPClient = true
        }
    }

    public func shutdown() async throws {
        if ownsHTTPClient { try await http.shutdown() }
    }

    /// Starts `flow` with `arguments` (a JSON object's bytes). Safe to call again with the same
    /// client request id: the node returns the flow already started.
    public func startFlow(_ flow: String, arguments: [UInt8], clientRequestId: String = randomUUID().uuidString.lowercased())
        async throws -> NodeFlow {
        try await startFlow(flow, arguments: arguments, clientRequestId: clientRequestId, waiting: false)
    }

    private func startFlow(_ flow: String, arguments: [UInt8], clientRequestId: String, waiting: Bool) async throws -> NodeFlow {
        let query = waiting ? "?wait=\(waitSeconds)" : ""
        var body = Array("{\"flow\":".utf8) + (try JSONEncoder().encode(flow))
        body += Array(",\"arguments\":".utf8) + arguments
        body += Array(",\"clientRequestId\":".utf8) + (try JSONEncoder().encode(clientRequestId)) + Array("}".utf8)
        let request = body
        return try await withRetries { base, timeout in
            try NodeFlow(json: try await self.call(post: true, base + "/v1/flows" + query, body: request, timeout: timeout))
        }
    }

    /// Starts `flow` and waits until it has ended (or is parked in the hospital); returns its
    /// final state. One long-polling call in the common case; after a dropped connection or a
    /// failover the call is repeated, and the client request id makes it name the same flow.
    public func run(_ flow: String, arguments: [UInt8], clientRequestId: String = randomUUID().uuidString.lowercased())
        async throws -> NodeFlow {
        let started = try await startFlow(flow, arguments: arguments, clientRequestId: clientRequestId, waiting: true)
        return started.hasEnded ? started : try await waitForEnd(started.id)
    }

    /// Waits until the flow has ended or is parked in the hospital, and returns its final state.
    public func waitForEnd(_ id: String) async throws -> NodeFlow {
        while true {
            let found = try await withRetries { base, timeout in
                try NodeFlow(json: try await self.call(post: false, base + "/v1/flows/\(Self.escape(id))?wait=\(self.waitSeconds)",
                                                       body: nil, timeout: timeout))
            }
            if found.hasEnded { return found }
        }
    }

    /// How long one long-polling call asks the node to wait: well inside one attempt's timeout.
    private var waitSeconds: Int {
        max(1, min(20, Int(RetryPolicy.nanoseconds(retryPolicy.attemptTimeout) / 1_000_000_000) - 5))
    }

    public func flow(_ id: String) async throws -> NodeFlow {
        try await withRetries { base, timeout in
            try NodeFlow(json: try await self.call(post: false, base + "/v1/flows/\(Self.escape(id))", body: nil, timeout: timeout))
        }
    }

    /// The flow started with `clientRequestId`, or nil if none was (re-attach after a lost start).
    public func flow(clientRequestId: String) async throws -> NodeFlow? {
        do {
            return try await withRetries { base, timeout in
                try NodeFlow(json: try await self.call(post: false, base + "/v1/flows/by-client-id/\(Self.escape(clientRequestId))",
                                                       body: nil, timeout: timeout))
            }
        } catch NodeClientError.api(_, "flow_not_found", _) {
            return nil
        }
    }

    public func kill(_ id: String) async throws -> NodeFlow {
        try await withRetries { base, timeout in
            try NodeFlow(json: try await self.call(post: true, base + "/v1/flows/\(Self.escape(id))/kill", body: nil, timeout: timeout))
        }
    }

    /// Runs a hospitalised flow again now (`flow_not_hospitalised` if it is not in the hospital).
    public func resume(_ id: String) async throws -> NodeFlow {
        try await withRetries { base, timeout in
            try NodeFlow(json: try await self.call(post: true, base + "/v1/flows/\(Self.escape(id))/resume", body: nil, timeout: timeout))
        }
    }

    /// Follows a flow's events until it ends (or is parked in the hospital), reconnecting (to the
    /// active node, or the next address) when the stream drops, and returns the flow's final
    /// state. A reconnection resumes after the last event seen (`Last-Event-ID`), so `onEvent`
    /// hears every event once, in order, whatever reconnects and failovers happen.
    public func watch(_ id: String, onEvent: (NodeFlowEvent) async -> Void = { _ in }) async throws -> NodeFlow {
        var lastEventID: String?
        var failures = 0
        while true {
            try Task.checkCancellation()
            let target = targets.withLock { $0.current }
            do {
                var request = HTTPClientRequest(url: target + "/v1/flows/\(Self.escape(id))/events")
                request.headers.add(name: "Authorization", value: authorization)
                request.headers.add(name: "Accept", value: "text/event-stream")
                if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
                let response = try await http.execute(request, timeout: .hours(24))
                guard response.status.code == 200 else {
                    throw Self.error(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After"),
                                     body: try await response.body.collect(upTo: 1 << 20))
                }
                var parser = ServerSentEvents()
                for try await chunk in response.body {
                    for received in parser.feed(chunk) {
                        let event = try JSONDecoder().decode(NodeFlowEvent.self, from: Data(received.data.utf8))
                        lastEventID = received.id ?? lastEventID
                        failures = 0
                        await onEvent(event)
                        guard let status = event.status, ["completed", "failed", "killed", "hospitalised"].contains(status) else { continue }
                        // A parked flow's stream stays open (an operator may resume it): stop here.
                        let found = try await flow(id)
                        if status != "hospitalised" || found.retryAt == nil { return found }
                    }
                }
                // The stream ended without a final status: the node went away; reconnect.
                throw NodeClientError.unexpectedResponse(status: 0, body: "the event stream ended early")
            } catch {
                guard Self.isRetryable(error) else { throw error }
                failures += 1
                guard failures < retryPolicy.maxAttempts else {
                    throw NodeClientError.unavailable(attempts: failures, lastError: "\(target): \(errorText(error))")
                }
                failOver(after: error)
                try await Task.sleep(for: pause(beforeRetry: failures))
            }
        }
    }
}

/// A flow as the node reports it.
public struct NodeFlow: Sendable {
    public var id: String
    public var clientRequestId: String?
    public var flow: String
    public var status: String
    public var error: String?
    public var attempts: Int
    public var retryAt: String?
    /// When the flow was started (RFC 3339).
    public var createdAt: String?
    /// When the flow last changed state (RFC 3339): for an ended flow, when it ended.
    public var updatedAt: String?
    /// The node's answer as received; `result` is taken from it when asked for.
    private let json: Data

    private struct Fields: Decodable {
        var id: String
        var clientRequestId: String?
        var flow: String
        var status: String
        var error: String?
        var attempts: Int?
        var retryAt: String?
        var createdAt: String?
        var updatedAt: String?
    }

    init(json: Data) throws {
        guard let fields = try? JSONDecoder().decode(Fields.self, from: json) else {
            throw NodeClientError.unexpectedResponse(status: 200, body: String(decoding: json.prefix(200), as: UTF8.self))
        }
        id = fields.id
        clientRequestId = fields.clientRequestId
        flow = fields.flow
        status = fields.status
        error = fields.error
        attempts = fields.attempts ?? 0
        retryAt = fields.retryAt
        createdAt = fields.createdAt
        updatedAt = fields.updatedAt
        self.json = json
    }

    /// The flow's output as JSON (keys sorted, numbers exactly as the node sent them), or nil
    /// before it completes.
    public var result: Data? {
        guard let value = (try? JSONValue(parsing: [UInt8](json)))?.object?["result"] else { return nil }
        return Data(value.bytes)
    }

    /// True once the flow has completed, failed or been killed, or is parked in the hospital
    /// for an operator (not waiting for an automatic retry).
    public var hasEnded: Bool {
        ["completed", "failed", "killed"].contains(status) || (status == "hospitalised" && retryAt == nil)
    }
}

/// One event of a flow's stream.
public struct NodeFlowEvent: Sendable, Equatable, Codable {
    public var flowId: String
    public var sequence: Int?
    public var step: String?
    public var status: String?
    public var error: String?
    /// With a status: how many times the hospital has retried the flow.
    public var attempts: Int?
}

public enum NodeClientError: Error, Equatable, CustomStringConvertible {
    /// The node answered with an API error.
    case api(status: Int, code: String, message: String)
    case unexpectedResponse(status: Int, body: String)
    /// Every attempt failed with a retryable error.
    case unavailable(attempts: Int, lastError: String)

    public var description: String {
        switch self {
        case .api(let status, let code, let message): "\(code) (\(status)): \(message)"
        case .unexpectedResponse(let status, let body): "unexpected response \(status): \(body)"
        case .unavailable(let attempts, let last): "no node answered after \(attempts) attempts; last error: \(last)"
        }
    }
}

/// Splits a server-sent event stream into its events: each one's `data`, and its `id` if it has one.
struct ServerSentEvents {
    struct Event: Equatable {
        var id: String?
        var data: String
    }
    private var buffer = ""

    mutating func feed(_ chunk: ByteBuffer) -> [Event] {
        buffer += String(buffer: chunk)
        var out = [Event]()
        while let end = buffer.range(of: "\n\n") {
            let lines = buffer[..<end.lowerBound].split(separator: "\n")
            buffer.removeSubrange(..<end.upperBound)
            func field(_ name: String) -> [Substring] {
                lines.filter { $0.hasPrefix(name + ":") }.map { $0.dropFirst(name.count + 1).drop(while: { $0 == " " }) }
            }
            let data = field("data").joined(separator: "\n")
            if !data.isEmpty { out.append(Event(id: field("id").last.map(String.init), data: data)) }
        }
        return out
    }
}
