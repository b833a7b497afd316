import Foundation

/// Refuses to start afresh on a database that is gone. A store makes its tables when it finds
/// none: right on the first start, a silent loss on any later one. A node whose `node.sqlite`
/// was deleted (or whose PostgreSQL database was replaced by an empty one) started ready with no
/// flows and ran a repeated start of an acknowledged flow a second time; a notary whose log went
/// the same way would forget every state it saw spent. The first start leaves a record file in
/// the data directory; while it is there, a database without its tables is refused before
/// anything is made in it.
struct DatabaseBirthRecord {
    /// The record's file, `DATA/NAME.created`.
    let path: String
    /// What the database is, for the refusal ("the node database (…/node.sqlite)").
    let database: String

    init(data: String, name: String, database: String) {
        path = data + "/" + name + ".created"
        self.database = database
    }

    enum Verdict: Equatable {
        /// Open it; write the record first if it is missing (a first start, or a directory from
        /// before records were kept, whose database is there).
        case open(writeRecord: Bool)
        /// The record says the database was made before, and it has no tables now.
        case refuse
    }

    static func verdict(recorded: Bool, present: Bool) -> Verdict {
        switch (recorded, present) {
        case (true, false): .refuse
        case (true, true): .open(writeRecord: false)
        case (false, _): .open(writeRecord: true)
        }
    }

    /// `open`s the database, whose tables are `present` or not before it is opened, unless the
    /// record refuses it (`LostDatabase`); records its birth once it opened.
    func guarding<T>(present: Bool, _ open: () async throws -> T) async throws -> T {
        let write = try check(present: present)
        let opened = try await open()
        if write { try record() }
        return opened
    }

    /// As above, for a database opened synchronously (SQLite).
    func guarding<T>(present: Bool, _ open: () throws -> T) throws -> T {
        let write = try check(present: present)
        let opened = try open()
        if write { try record() }
        return opened
    }

    /// Whether a SQLite database file holds anything: SQLite makes a missing or empty file a new database.
    static func sqliteFileHoldsData(_ path: String) -> Bool {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) > 0
    }

    private func check(present: Bool) throws -> Bool {
        switch Self.verdict(recorded: FileManager.default.fileExists(atPath: path), present: present) {
        case .open(let write): return write
        case .refuse:
            let made = (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").first.map { " (\($0))" } ?? ""
            throw LostDatabase(message: "\(database) has none of its tables, but \(path) records that it was made before\(made): "
                               + "it was deleted, emptied or replaced, and starting on it would forget what it held. "
                               + "Restore it from a backup; to start afresh on purpose, delete \(path)")
        }
    }

    private func record() throws {
        let text = "made \(ISO8601DateFormatter().string(from: Date())): \(database)\n"
            + "While this file is here, hawser refuses to start if that database has none of its tables. Delete it to start afresh.\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// A database that a data directory's record says existed has none of its tables: start-up stops.
public struct LostDatabase: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
