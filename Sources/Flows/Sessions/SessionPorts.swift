import Sessions

/// The node database's side of sessions: the inbox, and the outbox as the link manager reads
/// and empties it (flows fill it, `LocalEffect.outbox`, in the transaction of their journal entry).
public protocol SessionStore: Sendable {
    /// Writes `messages` to the inbox in one durable transaction, each only if a flow here that
    /// its session belongs to (`SessionInbound.initiatorFlowId`, `responderRequestId`) is still
    /// running and no message with its key is there already; for each, true if it wrote it.
    /// Refused (throws) by a fenced store whose fence is gone; nothing is written then.
    func acceptInbound(_ messages: [InboxMessage]) async throws -> [Bool]
    /// The inbox's message with `key`, if it has come.
    func inbound(_ key: SessionMessageKey) async throws -> InboxMessage?
    /// Up to `limit` outbox messages to recipients not in `excluding`, oldest first.
    func outbound(limit: Int, excluding: Set<String>) async throws -> [OutboxMessage]
    /// Deletes the outbox messages `messageIds` in one transaction: their recipients' nodes have
    /// them. Deleting one that is gone does nothing.
    func acknowledge(_ messageIds: [String]) async throws
    /// How many outbox messages wait for each recipient (recipients with none are left out):
    /// a peer that is down shows as its backlog.
    func outboxBacklog() async throws -> [String: Int]
    /// Deletes up to `limit` inbox messages of sessions no flow here runs any more (neither the
    /// initiator nor the responder, both here when two parties of the node talk), in one
    /// transaction; returns how many it deleted. Refused (throws) by a fenced store whose fence
    /// is gone.
    func pruneInbox(limit: Int) async throws -> Int
}

extension SessionStore {
    /// One message, as `acceptInbound(_:)` with one.
    public func acceptInbound(_ message: InboxMessage) async throws -> Bool { try await acceptInbound([message]) == [true] }
}

/// How session messages reach other nodes: the link manager hands a recipient's outbox messages,
/// in order, to the transport, which returns once the recipient's node has answered. An
/// implementation carries them to the node that hosts `recipient` and calls its
/// `SessionHub.accept` for each, in order.
public protocol PeerTransport: Sendable {
    /// Delivers `bodies` (encoded `SessionMessage`s for `recipient`, oldest first) to the node
    /// that hosts `recipient`. Returns the node's answer to each message it took, in order: fewer
    /// answers than messages when it could not take the rest now (the link manager delivers those
    /// again later). Throws if the node could not be reached, did not answer, or refused the
    /// delivery as a whole (nothing of it was taken).
    func deliver(_ bodies: [[UInt8]], to recipient: String) async throws -> [DeliveryAnswer]
}

/// A receiving node's answer to a delivery.
public enum DeliveryAnswer: Sendable, Equatable {
    /// The message is in the node's inbox (now or before): the sender may forget it.
    case accepted
    /// The node will not take the message (`SessionInbound`); the sending flow gets `error` as
    /// the counterparty's answer.
    case refused(SessionError)
}

/// No node that hosts the recipient is reachable now.
public struct PeerUnreachable: Error, Sendable, Equatable, CustomStringConvertible {
    public var recipient: String
    public init(_ recipient: String) { self.recipient = recipient }
    public var description: String { "no node that hosts \(recipient) can be reached" }
}

/// A message in a node's inbox, as the store keeps it: its key and its encoded form.
public struct InboxMessage: Sendable, Equatable {
    public var key: SessionMessageKey
    public var body: [UInt8]

    public init(key: SessionMessageKey, body: [UInt8]) {
        self.key = key
        self.body = body
    }

    public init(_ message: SessionMessage) {
        self.init(key: message.key, body: message.encoded())
    }
}
