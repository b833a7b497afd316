import NIOCore

/// A message received from the server (`MSG` or `HMSG`).
public struct NATSMessage: Sendable, Hashable {
    /// The subject the message was published to.
    public var subject: String
    /// The subscription id the server delivered it for.
    public var subscriptionID: UInt64
    /// The reply subject, if the publisher asked for a reply.
    public var replyTo: String?
    /// Headers, present only for `HMSG`.
    public var headers: NATSHeaders?
    /// The payload.
    public var payload: ByteBuffer

    public init(
        subject: String, subscriptionID: UInt64 = 0, replyTo: String? = nil,
        headers: NATSHeaders? = nil, payload: ByteBuffer = ByteBuffer()
    ) {
        self.subject = subject
        self.subscriptionID = subscriptionID
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }

    /// The header status code (`503`, `408`, `100`, ...), if any.
    public var status: UInt16? { headers?.status }
    /// The payload as bytes.
    public var bytes: [UInt8] { Array(payload.readableBytesView) }
    /// The payload decoded as UTF-8.
    public var string: String { String(buffer: payload) }
}

/// Errors of the NATS client.
public enum NATSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The client was closed (by `close()` or because reconnecting gave up).
    case connectionClosed
    /// No server could be reached; carries the last failure.
    case connectionFailed(String)
    /// The server refused the credentials.
    case authorizationViolation(String)
    /// The server sent `-ERR`.
    case serverError(String)
    /// The server sent bytes that are not the NATS protocol.
    case protocolError(String)
    /// A request or flush was not answered in time.
    case timeout
    /// A request found no subscriber (status 503).
    case noResponders
    /// The message is larger than the server's `max_payload`.
    case maxPayloadExceeded(size: Int, limit: Int)
    /// The bounded buffer for publishes made while disconnected is full.
    case reconnectBufferExceeded
    /// A subject or queue group is empty or contains whitespace.
    case invalidSubject(String)
    /// A header name or value cannot be encoded.
    case invalidHeader(String)
    /// The server did not answer pings.
    case staleConnection
    /// TLS was required by one side and is not available on the other.
    case tlsMismatch(String)
    /// A server URL could not be parsed.
    case invalidServerURL(String)

    public var description: String {
        switch self {
        case .connectionClosed: "connection closed"
        case .connectionFailed(let r): "connection failed: \(r)"
        case .authorizationViolation(let r): "authorization violation: \(r)"
        case .serverError(let r): "server error: \(r)"
        case .protocolError(let r): "protocol error: \(r)"
        case .timeout: "timed out"
        case .noResponders: "no responders"
        case .maxPayloadExceeded(let s, let l): "payload of \(s) bytes exceeds the server limit of \(l)"
        case .reconnectBufferExceeded: "reconnect buffer full"
        case .invalidSubject(let s): "invalid subject \(s.debugDescription)"
        case .invalidHeader(let r): "invalid header: \(r)"
        case .staleConnection: "stale connection"
        case .tlsMismatch(let r): "TLS mismatch: \(r)"
        case .invalidServerURL(let u): "invalid server URL \(u.debugDescription)"
        }
    }
}

enum SubjectValidation {
    /// A subject must be non-empty and free of whitespace and control characters.
    static func check(_ subject: String) throws(NATSError) {
        if subject.isEmpty || subject.utf8.contains(where: { $0 <= 32 || $0 == 127 }) {
            throw .invalidSubject(subject)
        }
    }
}
