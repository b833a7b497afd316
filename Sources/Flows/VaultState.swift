import Foundation
import HawserCore

/// One output of a notarised transaction that this node records: who owns it, what kind of
/// state it is, the application's payload, and whether it has been consumed or soft-locked.
/// (Here rather than in Vault: the vault updates a flow makes are among its local effects, a
/// closed set every flow store applies.)
public struct VaultState: Sendable, Equatable, Codable {
    public var ref: StateRef
    /// The application's name for the kind of state (e.g. "token").
    public var type: String
    /// The owning party's name.
    public var owner: String
    /// The application's payload (JSON).
    public var data: [UInt8]
    /// How much of something the state holds, for a fungible state (tokens, cash): the vault
    /// sums it into per-owner balances. Nil for other states.
    public var amount: Int64?
    /// The transaction that consumed the state, once one has.
    public var consumedBy: SecureHash?
    /// The flow that has reserved the state, if any.
    public var lockedBy: String?

    public init(ref: StateRef, type: String, owner: String, data: [UInt8], amount: Int64? = nil,
                consumedBy: SecureHash? = nil, lockedBy: String? = nil) {
        self.ref = ref
        self.type = type
        self.owner = owner
        self.data = data
        self.amount = amount
        self.consumedBy = consumedBy
        self.lockedBy = lockedBy
    }

    public var isConsumed: Bool { consumedBy != nil }

    private enum CodingKeys: String, CodingKey { case ref, type, owner, data, amount, consumedBy, lockedBy }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let refText = try c.decode(String.self, forKey: .ref)
        guard let ref = StateRef(refText) else {
            throw DecodingError.dataCorruptedError(forKey: .ref, in: c, debugDescription: "`\(refText)` is not a state ref")
        }
        self.ref = ref
        type = try c.decode(String.self, forKey: .type)
        owner = try c.decode(String.self, forKey: .owner)
        // Base64 since journals grew too large with an array of numbers; journals written before hold that.
        if let base64 = try? c.decode(String.self, forKey: .data) {
            guard let bytes = Data(base64Encoded: base64) else {
                throw DecodingError.dataCorruptedError(forKey: .data, in: c, debugDescription: "not base64")
            }
            data = [UInt8](bytes)
        } else {
            data = try c.decode([UInt8].self, forKey: .data)
        }
        amount = try c.decodeIfPresent(Int64.self, forKey: .amount)
        if let consumer = try c.decodeIfPresent(String.self, forKey: .consumedBy) {
            guard let hash = SecureHash(hex: consumer) else {
                throw DecodingError.dataCorruptedError(forKey: .consumedBy, in: c, debugDescription: "not a transaction id")
            }
            consumedBy = hash
        }
        lockedBy = try c.decodeIfPresent(String.self, forKey: .lockedBy)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ref.description, forKey: .ref)
        try c.encode(type, forKey: .type)
        try c.encode(owner, forKey: .owner)
        try c.encode(Data(data).base64EncodedString(), forKey: .data)
        try c.encodeIfPresent(amount, forKey: .amount)
        try c.encodeIfPresent(consumedBy?.hex, forKey: .consumedBy)
        try c.encodeIfPresent(lockedBy, forKey: .lockedBy)
    }
}
