import Foundation
import GRDB

/// Opens a WAL-mode SQLite database for one of the embedded adapters.
enum SQLite {
    /// `synchronous` is FULL where a commit must be on disk before it is acknowledged (the log),
    /// NORMAL where the data can be rebuilt from the log (a replica's store).
    static func open(_ path: String, synchronousFull: Bool) throws -> DatabasePool {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        var config = Configuration()
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronousFull ? "FULL" : "NORMAL")")
            // 64 MiB of page cache per connection, and reads through a memory map rather than a
            // system call per page: a store of millions of states is read at random.
            try db.execute(sql: "PRAGMA cache_size = -65536")
            try db.execute(sql: "PRAGMA mmap_size = 17179869184")
        }
        return try DatabasePool(path: path, configuration: config)
    }
}
