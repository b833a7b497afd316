import Crypto
import Foundation
import HawserCore

/// How every notary store keeps its facts, whatever its database: a ref as 36 bytes (its
/// transaction id, then its index as a big-endian u32), an outcome in the canonical encoding,
/// and the digest over both tables. One encoding, so that replicas on different back ends
/// holding the same state have the same digest.
public enum NotaryStoreEncoding {
    public static func key(_ ref: StateRef) -> [UInt8] {
        var key = ref.txId.bytes
        key.reserveCapacity(36)
        for shift in stride(from: 24, through: 0, by: -8) { key.append(UInt8(truncatingIfNeeded: ref.index >> UInt32(shift))) }
        return key
    }

    public static func bytes(_ outcome: NotarisationOutcome) -> [UInt8] {
        var writer = CanonicalWriter()
        writer.outcome(outcome)
        return writer.bytes
    }

    public static func outcome<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws -> NotarisationOutcome {
        var reader = CanonicalReader(Array(bytes))
        let outcome = try reader.outcome()
        try reader.expectEnd()
        return outcome
    }

    /// SHA-256 over the rows of `spent` (ref, tx_id) and then `outcomes` (tx_id, outcome), each
    /// table in key order, each column as its length (big-endian u32) and its bytes.
    public struct Digest {
        private var hasher = SHA256()

        public init() {}

        public mutating func add<Bytes: DataProtocol>(column value: Bytes) {
            var length = UInt32(value.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: value)
        }

        public func finish() -> SecureHash { SecureHash(bytes: Array(hasher.finalize()))! }
    }
}
