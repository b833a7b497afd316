import Foundation
import GRDB

/// Reads the rows the candidates' fenced writes committed (the `writes` table of `--fenced-writes`).
struct FencedLog {
    struct Write: Sendable, Hashable {
        var writer: String
        var epoch: UInt64
        var t: Int64
    }

    static func writes(_ path: String) throws -> [Write] {
        let db = try DatabaseQueue(path: path)
        return try db.read { db in
            try Row.fetchAll(db, sql: "SELECT writer, epoch, t FROM writes ORDER BY seq").map {
                Write(writer: $0["writer"], epoch: UInt64($0["epoch"] as Int64), t: $0["t"])
            }
        }
    }

    /// Fencing's promise, as seen in the committed rows: epochs never go down in commit order, and
    /// one epoch belongs to one writer.
    static func problems(_ writes: [Write]) -> [String] {
        var problems: [String] = []
        var owner: [UInt64: String] = [:]
        for (index, write) in writes.enumerated() {
            if index > 0, write.epoch < writes[index - 1].epoch {
                problems.append("row \(index): epoch \(write.epoch) by \(write.writer) committed after epoch \(writes[index - 1].epoch)")
            }
            if let first = owner[write.epoch], first != write.writer {
                problems.append("epoch \(write.epoch) used by \(first) and \(write.writer)")
            }
            owner[write.epoch] = write.writer
        }
        return problems
    }
}
