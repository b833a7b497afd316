import Foundation
import GRDB
import Notary
import Synchronization

/// The embedded `ReplicatedLog`: a table in its own SQLite file, fsynced on every append
/// (`synchronous = FULL`), so an acknowledged entry survives a crash of the process or machine.
/// It replicates nothing; it is the default for a single process.
public final class SQLiteLog: ReplicatedLog, Sendable {
    private let db: DatabasePool
    private let tail: TailSignal

    public init(path: String) throws {
        db = try SQLite.open(path, synchronousFull: true)
        try db.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS log (position INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        }
        tail = TailSignal(last: try db.read { try UInt64.fetchOne($0, sql: "SELECT COALESCE(MAX(position), 0) FROM log") ?? 0 })
    }

    public func append(_ payload: [UInt8]) async throws -> UInt64 {
        let position = try await db.write { db -> UInt64 in
            try db.execute(sql: "INSERT INTO log (payload) VALUES (?)", arguments: [Data(payload)])
            return UInt64(db.lastInsertedRowID)
        }
        tail.advance(to: position)
        return position
    }

    public func read(after position: UInt64, limit: Int) async throws -> [LogEntry] {
        try await tail.wait(beyond: position)
        return try await db.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT position, payload FROM log WHERE position > ? ORDER BY position LIMIT ?"),
                             arguments: [Int64(position), limit])
                .map { LogEntry(position: UInt64($0[0] as Int64), payload: [UInt8]($0[1] as Data)) }
        }
    }

    public func lastPosition() async throws -> UInt64 { tail.last }
}

/// The last appended position, and the readers waiting for it to pass theirs.
final class TailSignal: Sendable {
    private struct State {
        var last: UInt64
        var waiting: [UInt64: (after: UInt64, continuation: CheckedContinuation<Void, any Error>)] = [:]
        var nextId: UInt64 = 0
    }
    private let state: Mutex<State>

    init(last: UInt64) { state = Mutex(State(last: last)) }

    var last: UInt64 { state.withLock { $0.last } }

    func advance(to position: UInt64) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.last = max(state.last, position)
            let due = state.waiting.filter { $0.value.after < state.last }
            for id in due.keys { state.waiting[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    /// Returns once an entry after `position` exists; throws `CancellationError` if cancelled first.
    func wait(beyond position: UInt64) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextId += 1
            return state.nextId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let ready = state.withLock { state -> Bool in
                    if state.last > position || Task.isCancelled { return true }
                    state.waiting[id] = (position, continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let cancelled = state.withLock { $0.waiting.removeValue(forKey: id) }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }
}
