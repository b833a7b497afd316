import GRDB
import GRDBSQLite

/// A cached statement driven through SQLite's C API with blob parameters. The store's hot paths
/// look up and insert millions of rows, and GRDB's per-call argument handling costs several
/// times what SQLite itself does; everything else goes through GRDB as usual.
struct BlobStatement {
    private let statement: Statement
    private let db: Database

    init(_ db: Database, _ sql: String) throws {
        self.db = db
        statement = try db.cachedStatement(sql: sql)
    }

    /// Binds `parameters` (each a blob) and steps once; returns column 0 of the row as bytes
    /// when there is one. The parameters are only read during the call.
    func run<Result>(_ parameters: [UInt8]..., row: (UnsafeRawBufferPointer) -> Result) throws -> Result? {
        let raw = statement.sqliteStatement
        sqlite3_reset(raw)
        defer { sqlite3_reset(raw) }
        for (index, blob) in parameters.enumerated() {
            // SQLITE_TRANSIENT: SQLite copies the bytes, which are only borrowed here.
            let code = blob.withUnsafeBytes { sqlite3_bind_blob(raw, Int32(index + 1), $0.baseAddress, Int32($0.count), Self.transient) }
            guard code == SQLITE_OK else { throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage) }
        }
        let code = sqlite3_step(raw)
        switch code {
        case SQLITE_ROW:
            let bytes = UnsafeRawBufferPointer(start: sqlite3_column_blob(raw, 0), count: Int(sqlite3_column_bytes(raw, 0)))
            return row(bytes)
        case SQLITE_DONE:
            return nil
        default:
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: statement.sql)
        }
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
