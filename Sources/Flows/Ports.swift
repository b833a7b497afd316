import Foundation
import HawserCore
import Sessions

/// Notarisation as flows see it; the node wires it to its notary. Asking twice about the same
/// transaction id returns the first outcome, so a replayed flow may safely ask again. Errors
/// that may pass (notary unreachable, timeout) should be thrown as `TransientFlowError`. An
/// answer returned has been verified (`AnswerVerifier`): it is for the request's transaction and
/// carries the signature of `identity`'s key.
public protocol FlowNotary: Sendable {
    var identity: Party { get }
    /// Checks answers signed by this notary that counterparties present, for the port's life:
    /// answers of one notary batch share a signature, which it checks once.
    var verifier: AnswerVerifier { get }
    func notarise(_ request: NotarisationRequest) async throws -> NotarisationAnswer
}

/// The node's signing keys, one per party it hosts.
public protocol FlowKeys: Sendable {
    func party(named name: String) -> Party?
    func sign(_ bytes: [UInt8], as name: String) throws -> [UInt8]
    /// The signing key itself, for building requests that sign inline.
    func signingKey(of name: String) -> SigningKey?
}

/// Flow sessions as flows see them: the node's `SessionHub` (`docs/sessions.md`). Sending is a
/// local effect (an outbox row committed with the journal entry); receiving waits for one
/// message of a session, by its key, in the node's inbox.
public protocol FlowSessions: Sendable {
    /// How long `receive` waits for a message before the session times out.
    var timeout: Duration { get }
    /// The message `key` once it is in the inbox; nil if it did not come within `timeout`.
    func receive(_ key: SessionMessageKey, timeout: Duration) async throws -> SessionMessage?
    /// Outbox rows of messages to `recipients` are durable now: the link manager should deliver
    /// them soon.
    func outboxChanged(for recipients: Set<String>)
}

/// A message a flow sends: written to the outbox with its journal entry, delivered later.
/// Session messages (`SessionMessage`) travel as the payload, their key as the message id.
public struct OutboxMessage: Sendable, Equatable {
    /// Unique per message, so the receiver can drop duplicates.
    public var messageId: String
    public var session: String
    public var recipient: String
    public var payload: [UInt8]

    public init(messageId: String, session: String, recipient: String, payload: [UInt8]) {
        self.messageId = messageId
        self.session = session
        self.recipient = recipient
        self.payload = payload
    }

    /// The outbox row of a session message.
    public init(_ message: SessionMessage) {
        self.init(messageId: message.key.description, session: message.session, recipient: message.recipient,
                  payload: message.encoded())
    }
}

/// Time as the engine sees it: injected so tests control it.
public protocol FlowClock: Sendable {
    func now() -> Instant
    func sleep(for duration: Duration) async throws
}

/// The machine's clock.
public struct SystemFlowClock: FlowClock {
    public init() {}
    public func now() -> Instant {
        Instant(microsecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000_000).rounded()))
    }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

/// The services a node offers its flows. Other modules add their own (the vault) by type.
public struct FlowServices: Sendable {
    public var notary: (any FlowNotary)?
    public var keys: (any FlowKeys)?
    public var sessions: (any FlowSessions)?
    public var clock: any FlowClock
    private var extra: [ObjectIdentifier: any Sendable] = [:]

    public init(notary: (any FlowNotary)? = nil, keys: (any FlowKeys)? = nil, sessions: (any FlowSessions)? = nil,
                clock: any FlowClock = SystemFlowClock()) {
        self.notary = notary
        self.keys = keys
        self.sessions = sessions
        self.clock = clock
    }

    /// Adds a service found later by `service(_:)`; keyed by its type (e.g. `(any VaultStore).self`).
    public mutating func add<S>(_ service: S, as type: S.Type) where S: Sendable {
        extra[ObjectIdentifier(type)] = service
    }

    public func service<S>(_ type: S.Type) -> S? {
        extra[ObjectIdentifier(type)] as? S
    }
}

/// Raised when a flow uses a service the node does not provide.
public struct MissingServiceError: Error, CustomStringConvertible {
    public var service: String
    public init(_ service: String) { self.service = service }
    public var description: String { "this node does not provide the \(service) service to flows" }
}
