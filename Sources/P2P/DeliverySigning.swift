import Foundation
import HawserCore
import HawserWire
import SwiftProtobuf

/// The signed envelope of a delivery (docs/p2p.md): the sending node signs the encoded `Delivery`
/// with its identity key, after a context string that keeps the signature from meaning anything
/// else. The receiver checks the signature over the bytes it received, so the encoding need not be
/// canonical.
public enum DeliverySigning {
    static let context = Array("hawser-p2p-v1/delivery\n".utf8)

    /// `messages` (encoded session messages, in order) from node `from` to node `to`, signed at `now`.
    public static func sign(_ messages: [[UInt8]], from: String, to: String, at now: Instant,
                            with key: SigningKey) -> Hawser_P2p_V1_SignedDelivery {
        var delivery = Hawser_P2p_V1_Delivery()
        delivery.fromNode = from
        delivery.toNode = to
        delivery.signedAtMicros = now.microsecondsSinceEpoch
        delivery.messages = messages.map { Data($0) }
        let bytes: [UInt8] = try! delivery.serializedBytes()  // strings and bytes always encode
        var signed = Hawser_P2p_V1_SignedDelivery()
        signed.delivery = Data(bytes)
        signed.signature = Data(key.sign(context + bytes))
        return signed
    }

    static func isSigned(_ bytes: [UInt8], signature: [UInt8], by key: PublicKey) -> Bool {
        key.isValidSignature(signature, for: context + bytes)
    }
}
