import Foundation
import HawserCore

/// How a hot-hot node splits its flows over partitions (docs/node.md, "Hot-hot"): flow `id` belongs
/// to partition `FNV-1a-64(UTF-8 bytes of id) mod count`. Each partition is owned by one process
/// at a time, which runs and resumes only that partition's flows, so every process of a node must
/// use the same `count`. A process makes the ids of the flows it starts fall in a partition it owns
/// (`newID(in:)`), so a start runs where it was received.
public struct FlowPartitions: Sendable, Hashable {
    public let count: Int

    public init(count: Int) {
        precondition(count >= 1, "a node has at least one partition")
        self.count = count
    }

    /// The partition `id` belongs to.
    public func partition(of id: FlowID) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.rawValue.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(count))
    }

    /// A new flow id (a time-ordered UUID, as `FlowID.next`) in `partition`. Only the UUID's
    /// last six bytes are redrawn, from one random start, so the search costs no further
    /// randomness: a partition is hit after `count` tries on average.
    public func newID(in partition: Int) -> FlowID {
        precondition((0..<count).contains(partition), "partition \(partition) is not one of \(count)")
        let base = timeOrderedUUID().uuid
        var tail = UInt64(base.10) << 40 | UInt64(base.11) << 32 | UInt64(base.12) << 24
            | UInt64(base.13) << 16 | UInt64(base.14) << 8 | UInt64(base.15)
        while true {
            var bytes = base
            bytes.10 = UInt8(truncatingIfNeeded: tail >> 40)
            bytes.11 = UInt8(truncatingIfNeeded: tail >> 32)
            bytes.12 = UInt8(truncatingIfNeeded: tail >> 24)
            bytes.13 = UInt8(truncatingIfNeeded: tail >> 16)
            bytes.14 = UInt8(truncatingIfNeeded: tail >> 8)
            bytes.15 = UInt8(truncatingIfNeeded: tail)
            let id = FlowID(UUID(uuid: bytes).uuidString.lowercased())
            if self.partition(of: id) == partition { return id }
            tail = (tail &+ 1) & 0xFFFF_FFFF_FFFF
        }
    }
}
