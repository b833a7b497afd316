import Embedded
import Foundation

/// Refuses to start afresh on a database that is gone. A store makes its tables when it finds
/// none: right on the first start, a silent loss on any later one. A node whose `node.sqlite`
/// was deleted (or whose PostgreSQL database was replaced by an empty one) started ready with no
/// flows and ran a repeated start of an acknowledged flow a second time; a notary whose log went
/// the same way would forget every state it saw spent. The first start leaves a record file in
/// the data directory naming the database and its incarnation (a random id the database keeps,
/// `SQLiteIncarnation`, `PostgresIncarnation`). While the record is there, that database without
/// its tables is refused before anything is made in it, and one with another incarnation (made
/// afresh by another process: a hot-warm peer whose own record was lost) once it is opened.
/// Another database (the configuration now names another file or server) is a new one: its
/// record replaces the old.
struct DatabaseBirthRecord {
    /// The record's file, `DATA/NAME.created`.
    let path: String
    /// Which database this is, as the record names it: a SQLite file's name in the directory
    /// (the directory may move), or a PostgreSQL database's `host:port/name`.
    let identity: String
    /// What it is, for the refusal ("the node database (/srv/node/data/node.sqlite)").
    let database: String

    init(data: String, name: String, identity: String, database: String) {
        path = data + "/" + name + ".created"
        self.identity = identity
        self.database = database
    }

    enum Verdict: Equatable {
        /// Open it; once it opened, write the record if it does not name this database (a first
        /// start, a database the configuration moved to, or a directory from before records were kept).
        case open(writeRecord: Bool)
        /// The record says this database was made before, and it has no tables now.
        case refuse
    }

    /// `recorded`: the database the record names, if there is a record.
    static func verdict(recorded: String?, identity: String, present: Bool) -> Verdict {
        guard recorded == identity else { return .open(writeRecord: true) }
        return present ? .open(writeRecord: false) : .refuse
    }

    /// `open`s the database, whose tables are `present` or not before it is opened, and reads its
    /// `incarnation`, unless the record refuses it (`LostDatabase`); records it once it opened.
    func guarding<T>(present: Bool, _ open: () async throws -> T, incarnation: (T) async throws -> String) async throws -> T {
        let recorded = try check(present: present)
        let opened = try await open()
        try settle(recorded, incarnation: try await incarnation(opened))
        return opened
    }

    /// As above, for the SQLite file at `path`: a file that holds another incarnation than the
    /// recorded one, or none, is refused before it is opened, unchanged (opening makes the tables).
    func guardingSQLite<T>(path: String, _ open: () throws -> T, incarnation: (T) throws -> String) throws -> T {
        // SQLite makes a missing or empty file a new database.
        let present = ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) > 0
        let recorded = try check(present: present)
        if case .named(let expected?, let made) = recorded {
            let found: String?
            do { found = try sqliteIncarnation(at: path) } catch {
                // A damaged file: SQLite's error names no file (found from outside).
                throw LostDatabase(message: "\(database) cannot be read (\(error)), and \(path) records that it was made "
                                   + "\(made ?? "before"): it is damaged. Restore it from a backup; to start afresh on purpose, "
                                   + "delete it and \(path)")
            }
            if found != expected { throw another(found, expected: expected, made: made) }
        }
        let opened = try open()
        try settle(recorded, incarnation: try incarnation(opened))
        return opened
    }

    private static let databaseLine = "database: "
    private static let incarnationLine = "incarnation: "
    private static let madeLine = "made: "

    /// What the record says of this database, as read before it is opened.
    private enum Recorded {
        /// Nothing: no record names it (one is to be written).
        case nothing
        /// It names it, with its incarnation (none in a record written before they were kept).
        case named(incarnation: String?, made: String?)
    }

    private func check(present: Bool) throws -> Recorded {
        let lines = (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n") ?? []
        func field(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }
        switch Self.verdict(recorded: field(Self.databaseLine), identity: identity, present: present) {
        case .open(writeRecord: true): return .nothing
        case .open(writeRecord: false): return .named(incarnation: field(Self.incarnationLine), made: field(Self.madeLine))
        case .refuse:
            throw lost("has none of its tables", made: field(Self.madeLine))
        }
    }

    /// Refuses a database whose incarnation is not the recorded one; writes the record if it
    /// is to be written, or names no incarnation yet (written before records held one).
    private func settle(_ recorded: Recorded, incarnation: String) throws {
        switch recorded {
        case .named(let expected?, let made) where expected != incarnation:
            throw another(incarnation, expected: expected, made: made)
        case .named(.some, _): return
        case .named(nil, _), .nothing: try record(incarnation)
        }
    }

    private func another(_ found: String?, expected: String, made: String?) -> LostDatabase {
        lost("is another database than the one made here (" + (found.map { "incarnation \($0)" } ?? "it holds no incarnation")
             + ", not \(expected))", made: made)
    }

    private func lost(_ what: String, made: String?) -> LostDatabase {
        LostDatabase(message: "\(database) \(what), but \(path) records that it was made \(made ?? "before"): it was deleted, "
                     + "emptied or replaced, and starting on it would forget what it held. Restore it from a backup; to start "
                     + "afresh on purpose, delete \(path)")
    }

    private func record(_ incarnation: String) throws {
        let text = Self.databaseLine + identity + "\n" + Self.incarnationLine + incarnation + "\n"
            + Self.madeLine + ISO8601DateFormatter().string(from: Date()) + "\n"
            + "While this file names it, hawser refuses to start if that database has none of its tables or is another "
            + "incarnation. Delete this file to start afresh.\n"
        // A process that reads a PostgreSQL database from elsewhere (`hawser admin config` on
        // another machine) may have no data directory yet: the lock makes it for the others.
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// A database that a data directory's record says existed has none of its tables: start-up stops.
public struct LostDatabase: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
