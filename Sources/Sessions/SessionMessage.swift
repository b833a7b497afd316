import Foundation
import HawserCore

/// One message of a flow session, as it travels between nodes (`docs/sessions.md`). Each side
/// numbers the messages it sends in a session 1, 2, 3, ...; the initiating side's message 1 is
/// always `initiate`. `(session, sender, sequence)` is the message's dedup key: a receiver
/// writes a key to its inbox once, and a flow reads its messages by key, in sequence order.
public struct SessionMessage: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        /// Opens the session (the initiator's message 1): the responder's node starts the flow
        /// registered for `initiator`.
        case initiate
        /// A payload for the counterparty's `receive`.
        case data
        /// The sender closed the session (or its flow ended): it sends nothing more.
        case close
        /// The sender's flow failed, or its node refused the session: see `error`.
        case error
    }

    public var session: String
    public var sender: String
    public var recipient: String
    public var sequence: Int
    public var kind: Kind
    /// The data (`data` only; empty otherwise).
    public var payload: Data
    /// The initiating flow (`initiate` only).
    public var initiator: Initiator?
    /// Why the session ended (`error` only).
    public var error: SessionError?

    public init(session: String, sender: String, recipient: String, sequence: Int, kind: Kind, payload: [UInt8] = [],
                initiator: Initiator? = nil, error: SessionError? = nil) {
        self.session = session
        self.sender = sender
        self.recipient = recipient
        self.sequence = sequence
        self.kind = kind
        self.payload = Data(payload)
        self.initiator = initiator
        self.error = error
    }

    /// The initiating flow's name and version: the responder's node picks its responder by both.
    public struct Initiator: Sendable, Hashable, Codable {
        public var flowName: String
        public var version: Int
        public init(flowName: String, version: Int) {
            self.flowName = flowName
            self.version = version
        }
    }

    public var key: SessionMessageKey { SessionMessageKey(session: session, sender: sender, sequence: sequence) }

    /// The bytes stored in the outbox and inbox and sent between nodes: JSON, keys sorted.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Text, whole numbers and bytes always encode; only non-finite floating point could fail.
        return [UInt8](try! encoder.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> SessionMessage { try JSONDecoder().decode(SessionMessage.self, from: Data(bytes)) }
}

/// A message as it arrived from a peer: decoded once, and its bytes as sent (the inbox keeps
/// those, whatever fields they carry that this version ignores).
public struct ArrivedMessage: Sendable, Equatable {
    public var message: SessionMessage
    public var body: [UInt8]

    /// Throws `JSONParseError` (with the byte where reading stopped) for bytes that are not one
    /// strict JSON value (as every JSON a peer or a client sends is read), else `DecodingError`.
    public init(body: [UInt8]) throws {
        _ = try JSONValue(parsing: body)
        message = try SessionMessage.decode(body)
        self.body = body
    }
}

/// Names one message: the session, the party that sent it and its sequence number there.
public struct SessionMessageKey: Sendable, Hashable, Codable, CustomStringConvertible {
    public var session: String
    public var sender: String
    public var sequence: Int

    public init(session: String, sender: String, sequence: Int) {
        self.session = session
        self.sender = sender
        self.sequence = sequence
    }

    /// The outbox's message id: unique per message, and the same every time the message is made.
    public var description: String { "\(session)|\(sender)|\(sequence)" }
}
