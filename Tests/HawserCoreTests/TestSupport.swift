import HawserCore
import HawserTestSupport

/// Generators of random ledger values for the property tests.
extension SeededGenerator {
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &self) }
    }

    mutating func hash() -> SecureHash { SecureHash(bytes: bytes(32))! }

    mutating func stateRef() -> StateRef {
        StateRef(txId: hash(), index: Bool.random(using: &self) ? UInt32.random(in: 0...3, using: &self) : next32())
    }

    mutating func next32() -> UInt32 { UInt32(truncatingIfNeeded: next()) }

    /// Any instant within RFC 3339's years 0000...9999.
    mutating func instant() -> Instant {
        Instant(microsecondsSinceEpoch: Int64.random(in: Fixtures.minRFC3339Micros...Fixtures.maxRFC3339Micros, using: &self))
    }

    mutating func timeWindow() -> TimeWindow {
        let a = instant(), b = instant()
        let lo = min(a, b), hi = max(a, b)
        switch UInt8.random(in: 0...2, using: &self) {
        case 0: return TimeWindow(from: lo, until: nil)!
        case 1: return TimeWindow(from: nil, until: hi)!
        default:
            let until = hi == lo ? Instant(microsecondsSinceEpoch: lo.microsecondsSinceEpoch + 1) : hi
            return TimeWindow(from: lo, until: until)!
        }
    }

    mutating func outcome() -> NotarisationOutcome {
        switch UInt8.random(in: 0...2, using: &self) {
        case 0: return .committed
        case 1:
            let count = Int.random(in: 0...4, using: &self)
            return .conflict((0..<count).map { _ in
                Conflict(ref: stateRef(), kind: Bool.random(using: &self) ? .input : .reference, consumingTxIdHash: hash())
            })
        default:
            return .timeWindowInvalid(notaryTime: instant(), window: timeWindow())
        }
    }

    mutating func string(maxScalars: Int) -> String {
        let pool: [Unicode.Scalar] = ["a", "Z", "0", " ", "=", ",", "é", "ß", "東", "京", "😀", "\u{0}", "\n"]
        var s = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...maxScalars, using: &self) { s.append(pool.randomElement(using: &self)!) }
        return String(s)
    }
}

enum Fixtures {
    /// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
    static let minRFC3339Micros: Int64 = -62_167_219_200_000_000
    static let maxRFC3339Micros: Int64 = 253_402_300_799_999_999

    static func hash(_ byte: UInt8) -> SecureHash { SecureHash(bytes: [UInt8](repeating: byte, count: 32))! }
    static func key(_ byte: UInt8) -> SigningKey { SigningKey(seed: [UInt8](repeating: byte, count: 32))! }
    static func instant(_ text: String) -> Instant { Instant(rfc3339: text)! }
}

/// The shape of leaf `m`'s inclusion proof in a tree of `n` leaves (RFC 6962 PATH): for each path
/// hash from the leaf up, whether it is the right-hand sibling. Proof verification only ever sees
/// this shape, so a proof also "verifies" under any other index and count with the same shape.
func proofShape(_ m: Int, _ n: Int) -> [Bool] {
    if n == 1 { return [] }
    var k = 1
    while k << 1 < n { k <<= 1 }
    return m < k ? proofShape(m, k) + [true] : proofShape(m - k, n - k) + [false]
}
