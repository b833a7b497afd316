import Foundation
import HawserCore
import HawserWire
import Uniqueness

/// Encodes and decodes the notary's log entries (the `LogBatch` protobuf message).
enum LogBatchCodec {
    static func encode(_ requests: [NotarisationRequest], appendTime: Instant) -> [UInt8] {
        var batch = Hawser_V1_LogBatch()
        batch.appendTimeMicros = appendTime.microsecondsSinceEpoch
        batch.requests = requests.map(\.proto)
        // Serialising a fully built message cannot fail.
        return try! batch.serializedBytes()
    }

    /// The requests of one entry with the entry's timestamp. An undecodable request cannot come
    /// from a front (it validated it), so it is dropped the same way on every replica.
    static func decode(_ payload: [UInt8]) -> (requests: [NotarisationRequest], time: Instant, dropped: Int) {
        guard let batch = try? Hawser_V1_LogBatch(serializedBytes: payload) else { return ([], Instant(microsecondsSinceEpoch: 0), 1) }
        var requests = [NotarisationRequest]()
        requests.reserveCapacity(batch.requests.count)
        var dropped = 0
        for proto in batch.requests {
            if let request = try? NotarisationRequest(proto: proto) { requests.append(request) } else { dropped += 1 }
        }
        return (requests, Instant(microsecondsSinceEpoch: batch.appendTimeMicros), dropped)
    }
}
