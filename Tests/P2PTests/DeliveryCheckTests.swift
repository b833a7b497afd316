import Foundation
import HawserCore
import HawserWire
import Membership
@testable import P2P
import Sessions
import Testing

/// The receiving node's checks of a signed delivery, without a network: each refusal has its
/// code, and only a delivery from a member, signed by it, fresh, for this node, with messages
/// between the two nodes' parties passes.
@Suite(.timeLimit(.minutes(10)))
struct DeliveryCheckTests {
    static let aliceNode = SigningKey(seed: [UInt8](repeating: 1, count: 32))!
    static let bobNode = SigningKey(seed: [UInt8](repeating: 2, count: 32))!
    static let outsider = SigningKey(seed: [UInt8](repeating: 3, count: 32))!
    static let membership = try! Membership(definition())
    static let now = Instant(microsecondsSinceEpoch: 1_800_000_000_000_000)
    let check = DeliveryCheck(me: "O=Bob Node", maxSkew: .seconds(300))

    /// Alice's node hosts O=Alice and O=Ann; Bob's hosts O=Bob.
    static func definition() -> NetworkDefinition {
        let party = { (seed: UInt8) in SigningKey(seed: [UInt8](repeating: seed, count: 32))!.publicKey.base64 }
        return NetworkDefinition(version: 1, nodes: [
            .init(name: "O=Alice Node", identityKey: aliceNode.publicKey.base64, addresses: ["grpc://127.0.0.1:1"],
                  parties: [.init(name: "O=Alice", publicKey: party(11)), .init(name: "O=Ann", publicKey: party(12))]),
            .init(name: "O=Bob Node", identityKey: bobNode.publicKey.base64, addresses: ["grpc://127.0.0.1:2"],
                  parties: [.init(name: "O=Bob", publicKey: party(13))]),
        ], notaries: [.init(name: "O=Notary", publicKey: party(14), addresses: ["grpc://127.0.0.1:3"])])
    }

    static func message(_ sequence: Int, from sender: String = "O=Alice", to recipient: String = "O=Bob") -> [UInt8] {
        SessionMessage(session: "f/0", sender: sender, recipient: recipient, sequence: sequence, kind: sequence == 1 ? .initiate : .data,
                       payload: sequence == 1 ? [] : [UInt8(sequence)],
                       initiator: sequence == 1 ? .init(flowName: "Ping", version: 1) : nil).encoded()
    }

    func signed(_ messages: [[UInt8]], from: String = "O=Alice Node", to: String = "O=Bob Node", at: Instant = now,
                key: SigningKey = aliceNode) -> Hawser_P2p_V1_SignedDelivery {
        DeliverySigning.sign(messages, from: from, to: to, at: at, with: key)
    }

    func refusal(_ delivery: Hawser_P2p_V1_SignedDelivery, now: Instant = now) -> DeliveryRefusal.Code? {
        sentence(delivery, now: now)?.code
    }

    func sentence(_ delivery: Hawser_P2p_V1_SignedDelivery, now: Instant = now) -> DeliveryRefusal? {
        if case .failure(let refusal) = check.check(delivery, in: Self.membership, now: now) { return refusal }
        return nil
    }

    @Test func aMembersSignedDeliveryForThisNodePassesWithItsMessagesInOrder() throws {
        let messages = [Self.message(1), Self.message(2), Self.message(3, from: "O=Ann")]
        let passed = try check.check(signed(messages), in: Self.membership, now: Self.now).get()
        #expect(passed == DeliveryCheck.Passed(from: "O=Alice Node", messages: try messages.map(ArrivedMessage.init(body:))))
        // Within the allowed skew either way.
        #expect(refusal(signed(messages), now: Instant(microsecondsSinceEpoch: Self.now.microsecondsSinceEpoch + 299_000_000)) == nil)
        #expect(refusal(signed(messages), now: Instant(microsecondsSinceEpoch: Self.now.microsecondsSinceEpoch - 299_000_000)) == nil)
    }

    @Test func eachBrokenRuleRefusesTheWholeDeliveryWithItsCode() {
        var garbage = Hawser_P2p_V1_SignedDelivery()
        garbage.delivery = Data([0xFF, 0xFF, 0xFF])
        garbage.signature = Data(Self.aliceNode.sign([0xFF, 0xFF, 0xFF]))
        // Each said as what it is (garbage was "at most 32 messages", a bad field Swift's debug words).
        #expect(sentence(garbage)?.message == "the delivery is not an encoded `Delivery` message (proto/hawser_p2p.proto)")
        #expect(refusal(signed([])) == .malformedDelivery)
        // Not JSON is said as not JSON (it was "a number does not fit", found from outside).
        let notJSON = sentence(signed([Self.message(1), Array("{not json".utf8)]))
        #expect(notJSON?.code == .malformedDelivery && notJSON?.message.hasPrefix("message 1 does not decode: ") == true
                && notJSON?.message.contains("number") == false && notJSON?.message.contains("at byte 1") == true,
                "\(String(describing: notJSON))")
        let badField = sentence(signed([Array(#"{"kind":"data"}"#.utf8)]))
        #expect(badField?.code == .malformedDelivery && badField?.message.hasPrefix("message 0 does not decode: `") == true
                && badField?.message.contains("is missing") == true, "\(String(describing: badField))")
        // An outsider signing as itself, or as a member.
        #expect(refusal(signed([Self.message(1)], from: "O=Mallory Node", key: Self.outsider)) == .notAMember)
        #expect(refusal(signed([Self.message(1)], key: Self.outsider)) == .badSignature)
        // A member's signature over other bytes: the delivery was altered on the way.
        var altered = signed([Self.message(1)])
        var delivery = try! Hawser_P2p_V1_Delivery(serializedBytes: [UInt8](altered.delivery))
        delivery.messages.append(Data(Self.message(2)))
        altered.delivery = try! delivery.serializedData()
        #expect(refusal(altered) == .badSignature)
        #expect(refusal(signed([Self.message(1)], to: "O=Carol Node")) == .wrongNode)
        #expect(refusal(signed([Self.message(1)]), now: Instant(microsecondsSinceEpoch: Self.now.microsecondsSinceEpoch + 301_000_000))
                == .staleDelivery)
        #expect(refusal(signed([Self.message(1)]), now: Instant(microsecondsSinceEpoch: Self.now.microsecondsSinceEpoch - 301_000_000))
                == .staleDelivery)
        // Times so far off that their difference from the clock is Int64.min or overflows: a
        // member's delivery signed at `now - 2^63` stopped the node (abs of Int64.min traps).
        for signedAt in [Self.now.microsecondsSinceEpoch &+ Int64.min, Int64.min, Int64.max] {
            #expect(refusal(signed([Self.message(1)], at: Instant(microsecondsSinceEpoch: signedAt))) == .staleDelivery)
        }
        // Alice's node speaking for Bob's party, or to a party Bob's node does not host.
        #expect(refusal(signed([Self.message(1), Self.message(2, from: "O=Bob")])) == .forgedSender)
        #expect(refusal(signed([Self.message(1), Self.message(2, to: "O=Ann")])) == .notHostedHere)
        // Bob's node's own key does not make a delivery from Alice's node.
        #expect(refusal(signed([Self.message(1)], key: Self.bobNode)) == .badSignature)
    }

    /// More than 32 messages is refused before the delivery is decoded (and before its signature
    /// is checked): a non-member's 3 MB of empty messages cost a node about 30 MB each while it
    /// decoded them to refuse the signature.
    @Test func aDeliveryOfMoreThan32MessagesIsRefusedUndecoded() throws {
        let messages = (1...32).map { Self.message($0) }
        #expect(refusal(signed(messages)) == nil)
        #expect(sentence(signed(messages + [Self.message(33)]))?.message == "the delivery carries 33 messages; at most 32 are taken in one")
        var flood = Hawser_P2p_V1_Delivery()
        flood.fromNode = "O=Mallory Node"
        flood.messages = Array(repeating: Data(), count: 100_000)
        let bytes: [UInt8] = try flood.serializedBytes()
        #expect(DeliveryCheck.messageCount(bytes) == 100_000)
        var outsider = Hawser_P2p_V1_SignedDelivery()
        outsider.delivery = Data(bytes)
        outsider.signature = Data(Self.outsider.sign(bytes))
        #expect(refusal(outsider) == .malformedDelivery)
        // The wire reader counts field 4 only and refuses what is not protobuf.
        #expect(DeliveryCheck.messageCount([UInt8](signed(messages).delivery)) == 32)
        #expect(DeliveryCheck.messageCount([0x22, 0x05, 0x00]) == nil)  // a length past the end
        #expect(DeliveryCheck.messageCount([0x0F]) == nil)  // wire type 7
    }

    @Test func aSignatureMeansNothingOutsideItsContext() {
        // The same key signing the bare delivery bytes (no context) does not make a valid delivery.
        let good = signed([Self.message(1)])
        var bare = good
        bare.signature = Data(Self.aliceNode.sign([UInt8](good.delivery)))
        #expect(refusal(bare) == .badSignature)
    }
}
