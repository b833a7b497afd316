import Foundation
import GRDB

/// Opens a WAL-mode SQLite database for one of the embedded adapters.
enum SQLite {
    /// `synchronous` is FULL where a commit must be on disk before it is acknowledged (the log,
    /// the node's flows, the lease), NORMAL where the data can be rebuilt from the log (a
    /// replica's store).
    static func open(_ path: String, synchronousFull: Bool, busyTimeout: Double = 5) throws -> DatabasePool {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA cache_size = -65536")  // 64 MiB per connection
        }
        let pool = try DatabasePool(path: path, configuration: config)
        // Set on the writer once the pool is open: opening it puts the writer into WAL mode with
        // `synchronous = NORMAL`, which would undo a setting made while preparing the connection.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronousFull ? "FULL" : "NORMAL")")
        }
        return pool
    }
}

extension Database {
    /// Runs `sql` as a statement compiled once per connection: the flow store and vault run the
    /// same few statements for every flow, and compiling each time costs more than running it.
    func run(_ sql: String, _ arguments: StatementArguments) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }
}
