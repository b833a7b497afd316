import Coordination
import Embedded
import Foundation
import HawserTestSupport
import Testing

/// A SQLite file that cannot be opened is refused by name: SQLite's own message ("file is not a
/// database") named no file, and a process with three databases in one directory left the
/// operator to guess which one was broken (found from outside).
@Suite struct SQLiteOpenErrorTests {
    @Test func everyStoreNamesTheFileItCouldNotOpen() throws {
        let dir = try TemporaryDirectory()
        let opens: [(String, (String) throws -> Void)] = [
            ("node.sqlite", { _ = try SQLiteNodeDatabase(path: $0) }),
            ("log.sqlite", { _ = try SQLiteLog(path: $0) }),
            ("notary.sqlite", { _ = try SQLiteNotaryStore(path: $0) }),
            ("lease.sqlite", { _ = try SQLiteLeaseBackend(path: $0, busyTimeout: .seconds(1)) }),
        ]
        for (name, open) in opens {
            let path = dir.path + "/" + name
            try Data(repeating: 0x5a, count: 4096).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: SQLiteOpenError.self) { try open(path) }
            #expect(error?.path == path && error?.description.contains(path) == true, "\(String(describing: error))")
            #expect(error?.description.contains("not a database") == true, "SQLite's reason is kept: \(String(describing: error))")
        }
    }
}
