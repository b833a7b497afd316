import Coordination
import Embedded
import Flows
import Foundation
import HawserTestSupport
import Logging
import Notary
import PostgresStores
import Synchronization
import Testing
import Vault

/// The back ends every store test runs against: SQLite always, PostgreSQL where this machine can
/// run a private server (`PostgresServer.isAvailable`).
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    static var available: [Backend] { PostgresServer.isAvailable ? allCases : [.sqlite] }
    var testDescription: String { rawValue }
}

/// The node's stores, whichever back end holds them.
struct NodeStores: Sendable {
    let flows: any NodeFlowStore
    let vault: any VaultStore
    let sessions: any SessionStore
}

let quietLogger: Logger = {
    var logger = Logger(label: "hawser.tests")
    logger.logLevel = ProcessInfo.processInfo.environment["HAWSER_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}()

/// One new, empty database of a back end for one test. Each `node`, `notaryStore` or `log` call
/// opens it again, as another process sharing it would. Everything opened is closed by `with`.
final class StoreDatabase: Sendable {
    let backend: Backend
    private let directory: String
    private let url: String?
    private let clients = Mutex<[Task<Void, any Error>]>([])

    private init(backend: Backend, directory: String, url: String?) {
        self.backend = backend
        self.directory = directory
        self.url = url
    }

    /// Runs `body` with a new database of `backend` (inside a suite with `PostgresTrait(ifAvailable: true)`).
    static func with(_ backend: Backend, _ body: (StoreDatabase) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        var url: String?
        if backend == .postgres {
            let server = try #require(PostgresTrait.current, "the suite needs PostgresTrait")
            url = try await server.createDatabase()
        }
        let database = StoreDatabase(backend: backend, directory: directory.path, url: url)
        do {
            try await body(database)
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }

    func node(fence: WriteFence? = nil) async throws -> NodeStores {
        switch backend {
        case .sqlite:
            let database = try SQLiteNodeDatabase(path: directory + "/node.sqlite", fence: fence)
            return NodeStores(flows: database.flows, vault: database.vault, sessions: database.sessions)
        case .postgres:
            let database = try await PostgresNodeDatabase.open(try await connect(), fence: fence)
            return NodeStores(flows: database.flows, vault: database.vault, sessions: database.sessions)
        }
    }

    func notaryStore(fence: WriteFence? = nil) async throws -> any NotaryStore {
        switch backend {
        case .sqlite: try SQLiteNotaryStore(path: directory + "/notary.sqlite", durable: true, fence: fence)
        case .postgres: try await PostgresNotaryStore.open(try await connect(), fence: fence)
        }
    }

    func log() async throws -> any ReplicatedLog {
        switch backend {
        case .sqlite: try SQLiteLog(path: directory + "/log.sqlite")
        case .postgres: try await PostgresLog.open(try await connect(), poll: .milliseconds(20))
        }
    }

    /// A pooled client of the test's PostgreSQL database, running until the test ends. (The bound
    /// is for a loaded machine, not tested here: beside the whole suite, 10 s ran out.)
    private func connect() async throws -> PostgresDatabase {
        let database = try await PostgresDatabase.connect(url: url!, password: nil, timeout: .seconds(60), logger: quietLogger)
        clients.withLock { $0.append(Task { try await database.run() }) }
        return database
    }

    private func close() async {
        for task in clients.withLock({ $0 }) {
            task.cancel()
            _ = await task.result
        }
    }
}
