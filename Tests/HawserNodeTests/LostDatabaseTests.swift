import Flows
import Foundation
import GRDB
import HawserCore
import HawserNode
import HawserTestSupport
import HawserWire
import Hummingbird
import HummingbirdTesting
import Testing

/// A database that a process used before and that is now gone (deleted, emptied, replaced by an
/// empty one) stops the start, instead of being made afresh: a node whose `node.sqlite` was
/// deleted started ready with no flows, and a repeated start of an acknowledged flow ran it a
/// second time (found from outside). Deleting the record file is how an operator starts afresh.
@Suite(.timeLimit(.minutes(5))) struct LostDatabaseTests {
    @Test func aNodeWhoseDatabaseWasDeletedIsRefusedUntilItsRecordIsDeleted() async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let configuration = try NodeConfiguration.load(dir.path + "/node.json")
        let data = dir.path + "/data"
        try await completeOneFlow(configuration, in: dir.path)

        try removeSQLite(data + "/node.sqlite")
        let refusal = await #expect(throws: LostDatabase.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }
        #expect(refusal?.message.contains(data + "/node.sqlite") == true, "\(String(describing: refusal))")
        #expect(refusal?.message.contains(data + "/node-database.created") == true, "\(String(describing: refusal))")
        #expect(!FileManager.default.fileExists(atPath: data + "/node.sqlite"), "nothing was made in its place")

        try FileManager.default.removeItem(atPath: data + "/node-database.created")
        let (app, parts) = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        try await app.test(.router) { _ in
            let counts = try await parts.database.flows.counts()
            #expect(counts.isEmpty, "started afresh, as asked")
        }
    }

    /// A database made afresh elsewhere and put in its place has its tables, but is not the one
    /// this directory made: it is refused by its incarnation (found from outside: in a hot-warm
    /// pair, a peer whose own record was lost made the tables again, and the other took them).
    @Test func aNodeDatabaseReplacedByAnotherIsRefused() async throws {
        let dir = try TemporaryDirectory(), other = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        try writeNodeFiles(in: other.path)
        let configuration = try NodeConfiguration.load(dir.path + "/node.json")
        try await completeOneFlow(configuration, in: dir.path)
        try await completeOneFlow(try NodeConfiguration.load(other.path + "/node.json"), in: other.path)

        try removeSQLite(dir.path + "/data/node.sqlite")
        try FileManager.default.copyItem(atPath: other.path + "/data/node.sqlite", toPath: dir.path + "/data/node.sqlite")
        let refusal = await #expect(throws: LostDatabase.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }
        #expect(refusal?.message.contains("is another database than the one made here") == true, "\(String(describing: refusal))")
    }

    /// A file that is no database of Hawser's (or has lost its incarnation) in the node
    /// database's or the log's place is refused unchanged: the start made every table in it
    /// before it refused it (found from outside).
    @Test(arguments: ["node.sqlite", "log.sqlite"]) func aForeignFileInADatabasesPlaceIsRefusedUnchanged(_ name: String) async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let configuration = try NodeConfiguration.load(dir.path + "/node.json")
        try await completeOneFlow(configuration, in: dir.path)

        let path = dir.path + "/data/" + name
        try removeSQLite(path)
        let foreign = try DatabaseQueue(path: path)
        try await foreign.write { try $0.execute(sql: "CREATE TABLE x (a)") }
        try foreign.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let refusal = await #expect(throws: LostDatabase.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }
        #expect(refusal?.message.contains("is another database than the one made here (it holds no incarnation") == true,
                "\(String(describing: refusal))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the refused file was changed")
    }

    /// A damaged file (truncated) is refused naming the database and its record; it was refused
    /// with SQLite's bare "database disk image is malformed", naming no file (found from outside).
    @Test func aDamagedLogIsRefusedNamingTheFile() async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let configuration = try NodeConfiguration.load(dir.path + "/node.json")
        try await completeOneFlow(configuration, in: dir.path)
        let path = dir.path + "/data/log.sqlite"
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        var damaged = whole.prefix(whole.count / 2)
        damaged.replaceSubrange(0..<16, with: Data(repeating: 0x41, count: 16))  // no SQLite header
        try damaged.write(to: URL(fileURLWithPath: path))
        let refusal = await #expect(throws: LostDatabase.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }
        #expect(refusal?.message.contains("log.sqlite") == true && refusal?.message.contains("cannot be read") == true,
                "\(String(describing: refusal))")
    }

    @Test func aNodeWhoseEmbeddedNotaryLostItsLogIsRefused() async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let configuration = try NodeConfiguration.load(dir.path + "/node.json")
        try await completeOneFlow(configuration, in: dir.path)

        // An empty file is a new database to SQLite.
        try removeSQLite(dir.path + "/data/log.sqlite")
        FileManager.default.createFile(atPath: dir.path + "/data/log.sqlite", contents: Data())
        let refusal = await #expect(throws: LostDatabase.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }
        #expect(refusal?.message.contains("log.sqlite") == true, "\(String(describing: refusal))")
    }

    @Test func aNotaryWhoseLogWasDeletedIsRefused() async throws {
        let dir = try TemporaryDirectory()
        try writeNotaryFiles(in: dir.path)
        let configuration = try NotaryConfiguration.load(dir.path + "/hawser.json")
        let (first, _) = try await NotaryNode.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        try await first.test(.router) { _ in }

        try removeSQLite(dir.path + "/data/log.sqlite")
        try removeSQLite(dir.path + "/data/notary.sqlite")
        await #expect(throws: LostDatabase.self) {
            _ = try await NotaryNode.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }
    }
}

/// The same on PostgreSQL: the database emptied (its schema dropped and made again) under a node
/// and under a notary.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root"), PostgresTrait(),
       .timeLimit(.minutes(5)))
struct LostPostgresDatabaseTests {
    @Test func aNodeWhosePostgreSQLDatabaseWasEmptiedIsRefused() async throws {
        let server = try #require(PostgresTrait.current)
        let databaseURL = try await server.createDatabase()
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        var configuration = try NodeConfiguration.load(dir.path + "/node.json")
        configuration.database.kind = .postgres
        configuration.database.url = databaseURL
        configuration.database.connectTimeoutMillis = 60_000  // a loaded machine
        try await completeOneFlow(configuration, in: dir.path)

        try await server.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public", database: String(databaseURL.split(separator: "/").last!))
        await #expect(throws: LostDatabase.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }

        // A peer without a record (its data directory lost) makes the tables again; this node,
        // whose record names the database that was lost, still refuses the new one.
        let peer = try TemporaryDirectory()
        try writeNodeFiles(in: peer.path)
        let (made, _) = try await Node.application(configuration: configuration, baseDirectory: peer.path, logger: quietLogger)
        try await made.test(.router) { _ in }
        let replaced = await #expect(throws: LostDatabase.self) {
            _ = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }
        #expect(replaced?.message.contains("is another database") == true, "\(String(describing: replaced))")

        // Another database is a new one, not a lost one: a node moved to it starts there.
        configuration.database.url = try await server.createDatabase()
        let (moved, parts) = try await Node.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        try await moved.test(.router) { _ in
            let counts = try await parts.database.flows.counts()
            #expect(counts.isEmpty)
        }
    }

    @Test func aNotaryWhosePostgreSQLDatabaseWasEmptiedIsRefused() async throws {
        let server = try #require(PostgresTrait.current)
        let dir = try TemporaryDirectory()
        let (configuration, database) = try await writePostgresNotaryFiles(in: dir.path, server: server)
        let (first, _) = try await NotaryNode.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        try await first.test(.router) { _ in }

        try await server.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public", database: database)
        await #expect(throws: LostDatabase.self) {
            _ = try await NotaryNode.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger)
        }
    }
}

/// Runs the node of `configuration` once, until one flow started with a client request id completed.
private func completeOneFlow(_ configuration: NodeConfiguration, in directory: String) async throws {
    let (app, parts) = try await Node.application(configuration: configuration, baseDirectory: directory, logger: quietLogger)
    try await app.test(.router) { client in
        let id = try await client.execute(uri: "/v1/flows", method: .post, headers: ops,
                                          body: startBody("IssueTokens", #"{"owner":"O=Alice","amount":5}"#, clientRequestId: "once")) {
            (response: TestResponse) async throws in try JSONDecoder().decode(FlowJSON.self, from: Data(buffer: response.body)).id
        }
        #expect(try await parts.engine.waitForEnd(FlowID(id)).status == .completed)
    }
}

/// Deletes a SQLite database with its write-ahead log and shared-memory index.
private func removeSQLite(_ path: String) throws {
    for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
        try FileManager.default.removeItem(atPath: path + suffix)
    }
}
