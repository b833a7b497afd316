import Foundation
import HawserCore
import HawserWire

/// A notarisation request written as text (the CLI's and the JSON API's forms), ready to be signed.
public struct RequestDraft: Sendable, Equatable {
    public var txId: SecureHash
    public var inputs: [StateRef]
    public var references: [StateRef]
    public var timeWindow: TimeWindow?

    /// Parses the text forms: `txIdHex` as 64 hex digits (nil for a random id), refs as
    /// `<64 hex digits>:<index>`, `from` and `until` as RFC 3339. Throws the `APIError` the notary
    /// would return for the same mistake.
    public init(txIdHex: String?, inputs: [String], references: [String] = [], from: String? = nil,
                until: String? = nil) throws(APIError) {
        if let txIdHex {
            guard let id = SecureHash(hex: txIdHex) else {
                throw APIError(.invalidTransactionId, "the transaction id must be 64 hexadecimal digits, not `\(txIdHex.prefix(100))`")
            }
            txId = id
        } else {
            txId = .random()
        }
        func refs(_ texts: [String]) throws(APIError) -> [StateRef] {
            var out = [StateRef]()
            for text in texts {
                guard let ref = StateRef(text) else {
                    throw APIError(.invalidStateRef, "state ref `\(text.prefix(100))` is not `<64 hex digits>:<index>`")
                }
                out.append(ref)
            }
            return out
        }
        self.inputs = try refs(inputs)
        self.references = try refs(references)
        if from == nil && until == nil {
            timeWindow = nil
        } else {
            timeWindow = try TimeWindowJSON(from: from, until: until).decoded()
        }
    }

    /// The request signed by `key` as `requesterName`, addressed to the notary whose key is `notary`.
    public func signed(requesterName: String, key: SigningKey, notary: PublicKey) -> NotarisationRequest {
        .signed(txId: txId, inputs: inputs, references: references, timeWindow: timeWindow,
                requesterName: requesterName, key: key, notary: notary)
    }
}

extension TimeWindowJSON {
    init(from: String?, until: String?) {
        self.init(TimeWindow(from: Instant(microsecondsSinceEpoch: 0), until: nil)!)
        self.from = from
        self.until = until
    }
}

extension NotarisationRequest {
    /// The request as the API's JSON (`NotarisationRequestJSON`), pretty-printed with sorted keys,
    /// e.g. for `curl -H 'Content-Type: application/json' --data @- http://.../v1/notarise`.
    public var jsonText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings and arrays cannot fail.
        return String(decoding: try! encoder.encode(NotarisationRequestJSON(self)), as: UTF8.self)
    }
}

extension SecureHash {
    /// 32 random bytes from the system's secure generator: a fresh transaction id.
    public static func random() -> SecureHash {
        var g = SystemRandomNumberGenerator()
        return random(using: &g)
    }

    public static func random<G: RandomNumberGenerator>(using g: inout G) -> SecureHash {
        var bytes = [UInt8]()
        bytes.reserveCapacity(32)
        for _ in 0..<4 {
            let word = g.next() as UInt64
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return SecureHash(bytes: bytes)!
    }
}
