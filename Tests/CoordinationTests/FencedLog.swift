import Foundation
import GRDB

/// Reads the rows the candidates' fenced writes committed (the `writes` table of `--fenced-writes`).
struct FencedLog {
    struct Write: Sendable, Hashable {
        var writer: String
        var epoch: UInt64
        var t: Int64
        /// The fenced resource it was written under (`ledger`, or `ledger.p<k>` per partition).
        var resource: String
    }

    static func writes(_ path: String) throws -> [Write] {
        let db = try DatabaseQueue(path: path)
        return try db.read { db in
            try Row.fetchAll(db, sql: "SELECT writer, epoch, t, resource FROM writes ORDER BY seq").map {
                Write(writer: $0["writer"], epoch: UInt64($0["epoch"] as Int64), t: $0["t"], resource: $0["resource"])
            }
        }
    }

    /// Fencing's promise, as seen in the committed rows of each resource: epochs never go down in
    /// commit order, and one epoch belongs to one writer.
    static func problems(_ writes: [Write]) -> [String] {
        var problems: [String] = []
        var last: [String: Write] = [:]
        var owner: [String: [UInt64: String]] = [:]
        for (index, write) in writes.enumerated() {
            if let before = last[write.resource], write.epoch < before.epoch {
                problems.append("row \(index) of \(write.resource): epoch \(write.epoch) by \(write.writer) committed after epoch \(before.epoch)")
            }
            if let first = owner[write.resource]?[write.epoch], first != write.writer {
                problems.append("\(write.resource): epoch \(write.epoch) used by \(first) and \(write.writer)")
            }
            owner[write.resource, default: [:]][write.epoch] = write.writer
            last[write.resource] = write
        }
        return problems
    }
}
