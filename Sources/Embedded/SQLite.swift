import Foundation
import GRDB

/// A SQLite database file that could not be opened or prepared, by name: SQLite's own message
/// ("unable to open database file", "attempt to write a readonly database") names no file.
public struct SQLiteOpenError: Error, CustomStringConvertible {
    public let path: String
    public let underlying: any Error
    public var description: String { "cannot open the SQLite database \(path): \(underlying)" }
}

/// Opens a WAL-mode SQLite database for one of the embedded adapters.
enum SQLite {
    /// Runs an adapter's opening of `path` (the file, its pragmas, its tables), naming the file in
    /// any error.
    static func opening<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as SQLiteOpenError { throw error } catch {
            throw SQLiteOpenError(path: path, underlying: error)
        }
    }

    /// `synchronous` is FULL where a commit must be on disk before it is acknowledged (the log,
    /// the node's flows, the lease), NORMAL where the data can be rebuilt from the log (a
    /// replica's store).
    static func open(_ path: String, synchronousFull: Bool, busyTimeout: Double = 5) throws -> DatabasePool {
        // A bare file name lives in the working directory, which exists.
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA cache_size = -65536")  // 64 MiB per connection
        }
        let pool = try openRetryingWhileBusy(path, config, for: busyTimeout)
        // Set on the writer once the pool is open: opening it puts the writer into WAL mode with
        // `synchronous = NORMAL`, which would undo a setting made while preparing the connection.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronousFull ? "FULL" : "NORMAL")")
        }
        return pool
    }

    /// Opening puts the file in WAL mode, and that can be refused busy without the busy handler's
    /// wait: a hot-hot worker restarted beside others under load failed to start so, once in the
    /// suite ("database is locked - while executing `PRAGMA journal_mode = WAL`"; not reproduced
    /// on purpose: an exclusive transaction elsewhere is waited for as usual). Tried again for up
    /// to `seconds`, as the busy handler waits for any other statement.
    private static func openRetryingWhileBusy(_ path: String, _ config: Configuration, for seconds: Double) throws -> DatabasePool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while true {
            do {
                return try DatabasePool(path: path, configuration: config)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
    }
}

/// The hot paths (flow commits, log appends and reads, replica batches) run their transactions
/// on the calling thread and block it. Their callers are the dedicated threads of the group
/// committer, the log appender and the replica, which have nothing else to do meanwhile; with
/// GRDB's async API each transaction also hopped to GRDB's queue and back, and at 1,000 flows/s
/// the bench p50 was 1.8 ms higher. A cooperative-pool thread calling them waits out one fsync.
/// The reads of one row or a few by key that every flow or message makes (a flow's record and
/// journal, queued starts by id, an inbox message, a page of the outbox, states by ref) block
/// their caller too, even on the cooperative pool: they take microseconds, less than the two
/// thread switches of a hop.
extension DatabasePool {
    /// A write transaction on the calling thread, returning once it has committed.
    func writeBlocking<T>(_ updates: (Database) throws -> T) throws -> T { try write(updates) }

    /// A read on the calling thread.
    func readBlocking<T>(_ value: (Database) throws -> T) throws -> T { try read(value) }
}

extension DatabasePool {
    /// On a database opened with `synchronous = FULL`: a write transaction whose commit does not
    /// wait for the disk (`synchronous = NORMAL` for it alone), for writes whose loss in a crash
    /// of the machine is harmless: a reservation (the node goes down with the machine, and the
    /// flow chooses again), an outbox acknowledgement (the message is delivered again, and the
    /// receiver keeps it once), an inbox pruning (it is done again). A crash of the process loses
    /// nothing (the system has the log's pages), and the log is appended in commit order, so the
    /// next commit that waits for the disk makes this one durable too.
    ///
    /// The write runs in a task of its own, which the caller's cancellation does not reach: GRDB
    /// fails every statement of a cancelled task's access, the restoring one too, and a process
    /// whose reservation's caller was cancelled mid-write stopped on the `fatalError` below.
    func writeWithoutWaitingForDisk<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await Task {
            try await writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                defer {
                    // Every other commit on this connection relies on FULL: a node that could not
                    // restore it must not go on (setting a pragma does not fail in practice).
                    do { try db.execute(sql: "PRAGMA synchronous = FULL") } catch { fatalError("could not restore synchronous = FULL: \(error)") }
                }
                var value: T?
                try db.inTransaction {
                    value = try updates(db)
                    return .commit
                }
                return value!
            }
        }.value
    }
}

extension Database {
    /// Runs `sql` as a statement compiled once per connection: the flow store and vault run the
    /// same few statements for every flow, and compiling each time costs more than running it.
    func run(_ sql: String, _ arguments: StatementArguments) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }
}
