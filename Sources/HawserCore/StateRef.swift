/// A pointer to one output of a transaction: the transaction's id and the output's index.
public struct StateRef: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var txId: SecureHash
    public var index: UInt32

    public init(txId: SecureHash, index: UInt32) {
        self.txId = txId
        self.index = index
    }

    /// Text form `<64 hex digits>:<decimal index>`.
    public var description: String { "\(txId.hex):\(index)" }

    /// Parses the text form. The index must be plain decimal as `description` writes it: no sign
    /// and no leading zeros, so that one ref has one text form.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let txId = SecureHash(hex: String(parts[0])),
              parts[1].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let index = UInt32(parts[1]), String(index) == parts[1] else { return nil }
        self.init(txId: txId, index: index)
    }

    public static func < (a: StateRef, b: StateRef) -> Bool {
        (a.txId, a.index) < (b.txId, b.index)
    }
}
