import Foundation
import HawserCore
import HawserWire
import Membership
import Sessions
import SwiftProtobuf

/// What a receiving node checks of a signed delivery before it takes any of its messages
/// (docs/p2p.md): the sender is a member and signed it, it is for this node and fresh, and every
/// message speaks for one of the sender's parties to one of this node's. A delivery that fails a
/// check is refused whole; one that passes is taken message by message (`SessionHub.accept`),
/// each once by its key, so a replayed delivery changes nothing.
public struct DeliveryCheck: Sendable {
    /// This node's name in the network definition.
    public var me: String
    /// Most difference between the sender's signing time and this node's clock.
    public var maxSkew: Duration

    public init(me: String, maxSkew: Duration) {
        self.me = me
        self.maxSkew = maxSkew
    }

    /// A delivery that passed: its sender and its messages, in order.
    public struct Passed: Sendable, Equatable {
        public var from: String
        public var messages: [ArrivedMessage]

        public init(from: String, messages: [ArrivedMessage]) {
            self.from = from
            self.messages = messages
        }
    }

    public func check(_ signed: Hawser_P2p_V1_SignedDelivery, in membership: Membership, now: Instant)
        -> Result<Passed, DeliveryRefusal> {
        Result { () throws(DeliveryRefusal) in try passed(signed, membership, now) }
    }

    /// Most messages in one delivery (the sender's `GRPCPeerTransport` never puts more in one).
    public static let maxMessages = 32

    private func passed(_ signed: Hawser_P2p_V1_SignedDelivery, _ membership: Membership, _ now: Instant) throws(DeliveryRefusal) -> Passed {
        let bytes = [UInt8](signed.delivery)
        // Counted before decoding, which makes an object of every message: anyone, member or not,
        // could send millions of empty ones in one delivery, at about ten times its size in memory.
        guard let count = Self.messageCount(bytes) else {
            throw DeliveryRefusal(.malformedDelivery, "the delivery is not an encoded `Delivery` message (proto/hawser_p2p.proto)")
        }
        guard count <= Self.maxMessages else {
            throw DeliveryRefusal(.malformedDelivery, "the delivery carries \(count) messages; at most \(Self.maxMessages) are taken in one")
        }
        let delivery: Hawser_P2p_V1_Delivery
        do { delivery = try Hawser_P2p_V1_Delivery(serializedBytes: bytes) } catch {
            throw DeliveryRefusal(.malformedDelivery, "the delivery does not decode: \(error)")
        }
        guard let sender = membership.node(named: delivery.fromNode), let key = PublicKey(base64: sender.identityKey) else {
            throw DeliveryRefusal(.notAMember, "`\(delivery.fromNode.prefix(200))` is not a node of network definition version \(membership.version)")
        }
        guard DeliverySigning.isSigned(bytes, signature: [UInt8](signed.signature), by: key) else {
            throw DeliveryRefusal(.badSignature, "the signature is not `\(sender.name)`'s identity key's over the delivery")
        }
        guard delivery.toNode == me else {
            throw DeliveryRefusal(.wrongNode, "the delivery is for `\(delivery.toNode.prefix(200))`, and this node is `\(me)`")
        }
        // `magnitude`, not `abs`: a difference of exactly Int64.min has no Int64 absolute value.
        let (difference, overflow) = delivery.signedAtMicros.subtractingReportingOverflow(now.microsecondsSinceEpoch)
        guard !overflow, Duration.microseconds(difference.magnitude) <= maxSkew else {
            throw DeliveryRefusal(.staleDelivery, "it was signed at \(Instant(microsecondsSinceEpoch: delivery.signedAtMicros)), "
                                  + "more than \(maxSkew) from this node's clock (\(now))")
        }
        guard !delivery.messages.isEmpty else { throw DeliveryRefusal(.malformedDelivery, "the delivery carries no message") }
        let senders = Set(sender.parties.map(\.name))
        let hosted = Set(membership.node(named: me)?.parties.map(\.name) ?? [])
        var messages = [ArrivedMessage]()
        for (index, data) in delivery.messages.enumerated() {
            let arrived: ArrivedMessage
            do { arrived = try ArrivedMessage(body: [UInt8](data)) } catch {
                throw DeliveryRefusal(.malformedDelivery, "message \(index) does not decode: \((error as? DecodingError)?.plainDescription ?? "\(error)")")
            }
            let message = arrived.message
            guard senders.contains(message.sender) else {
                throw DeliveryRefusal(.forgedSender, "message \(index) is from `\(message.sender.prefix(200))`, not a party of `\(sender.name)`")
            }
            guard hosted.contains(message.recipient) else {
                throw DeliveryRefusal(.notHostedHere, "message \(index) is for `\(message.recipient.prefix(200))`, not a party of `\(me)`")
            }
            messages.append(arrived)
        }
        return Passed(from: sender.name, messages: messages)
    }

    /// How many `messages` (field 4) an encoded `Delivery` holds, read from its protobuf wire form
    /// without decoding it; nil if the bytes are not a well-formed message.
    static func messageCount(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { WireScan.occurrences(of: [4], in: $0) }
    }
}
