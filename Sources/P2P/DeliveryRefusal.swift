/// Why a node refused a whole delivery (docs/p2p.md): none of its messages was taken. Each code is
/// stable; the sentence says what was wrong, for the sending node's log.
public struct DeliveryRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// The delivery, or one of its messages, does not decode, or it carries no message.
        case malformedDelivery = "malformed_delivery"
        /// The sending node is not a member of the receiver's network definition.
        case notAMember = "not_a_member"
        /// The signature is not the sending node's over the delivery.
        case badSignature = "bad_signature"
        /// The delivery is addressed to another node.
        case wrongNode = "wrong_node"
        /// It was signed too long ago, or too far ahead of the receiver's clock.
        case staleDelivery = "stale_delivery"
        /// A message's sender is not a party of the sending node.
        case forgedSender = "forged_sender"
        /// A message's recipient is not a party of the receiving node.
        case notHostedHere = "not_hosted_here"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
