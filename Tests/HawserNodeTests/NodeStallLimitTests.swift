import Coordination
import HawserCore
@testable import HawserNode
import HawserTestSupport
import Logging
import Postgres
@testable import PostgresStores
import PostgresNIO
import Testing

/// The node's PostgreSQL sessions (and a fenced notary's) are bounded on the server (`PostgresNodeDatabase.stallLimit`):
/// a hot-warm node stopped (SIGSTOP) inside a transaction that read the fencing row `FOR SHARE`
/// (a vault reservation, a claim, a commit of several segments) no longer blocks the standby's
/// claim for as long as it stays stopped.
@Suite(.enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"), PostgresTrait(), .timeLimit(.minutes(3)))
struct NodeStallLimitTests {
    /// The node database of `url`, fenced by `fence`, as the node opens it, with its pool running.
    static func open(_ url: String, fence: WriteFence) async throws -> (NodeDatabase, PostgresStores.PostgresDatabase, Task<Void, any Error>) {
        var configuration = NodeDatabaseConfiguration()
        configuration.kind = .postgres
        configuration.url = url
        configuration.connectTimeoutMillis = 30_000
        // The data directory holds the database's record (`node-database.created`) only; one not
        // made yet is made for it, as for `hawser admin config` run on another machine.
        let data = try TemporaryDirectory()
        let database = try await NodeDatabase.open(configuration, data: data.path + "/not-made-yet", fence: fence, resolve: { $0 },
                                                   logger: quietLogger)
        let pool = try #require(database.services.first as? PostgresStores.PostgresDatabase)
        return (database, pool, Task { try await pool.run() })
    }

    /// The two settings of every session of `pool`.
    static func limits(_ pool: PostgresStores.PostgresDatabase) async throws -> [String] {
        try await pool.read { connection, logger in
            var out = [String]()
            for setting in ["idle_in_transaction_session_timeout", "lock_timeout"] {
                for try await value in try await connection.query("SELECT current_setting(\(setting))", logger: logger).decode(String.self) {
                    out.append(value)
                }
            }
            return out
        }
    }

    /// A notary sharing its database (fenced: hot-warm, hot-cold) bounds its sessions as the node
    /// does, when they open; a notary alone on its database does not need to.
    @Test func aFencedNotarysSessionsCarryTheBound() async throws {
        let server = try #require(PostgresTrait.current)  // one server for the suite, a database per test
        var configuration = NotaryConfiguration()
        configuration.database.kind = .postgres
        configuration.database.url = try await server.createDatabase()
        configuration.database.connectTimeoutMillis = 30_000
        let data = try TemporaryDirectory()
        for (fence, expected) in [(WriteFence(resource: "notary", epoch: Epoch(1)), ["2500ms", "2500ms"]), (nil, ["0", "0"])] {
            let stores = try await NotaryStores.open(configuration, data: data.path, fence: fence, resolve: { $0 }, logger: quietLogger)
            let pool = try #require(stores.services.first as? PostgresStores.PostgresDatabase)
            let running = Task { try await pool.run() }
            defer { running.cancel() }
            #expect(try await Self.limits(pool) == expected, "fenced: \(fence != nil)")
        }
    }

    /// `database.requestTimeoutMillis` bounds one call on its connection: a statement that runs
    /// longer fails (the server's answer would come after 3 s; the default bound is 30 s).
    @Test func aCallLongerThanTheRequestTimeoutFails() async throws {
        let server = try #require(PostgresTrait.current)  // one server for the suite, a database per test
        var configuration = NodeDatabaseConfiguration()
        configuration.kind = .postgres
        configuration.url = try await server.createDatabase()
        configuration.connectTimeoutMillis = 30_000
        configuration.requestTimeoutMillis = 1_000
        let data = try TemporaryDirectory()
        let database = try await NodeDatabase.open(configuration, data: data.path, fence: nil, resolve: { $0 }, logger: quietLogger)
        let pool = try #require(database.services.first as? PostgresStores.PostgresDatabase)
        let running = Task { try await pool.run() }
        defer { running.cancel() }
        let failed = await #expect(throws: StoreDatabaseError.self) {
            try await pool.read { connection, logger in _ = try await connection.query("SELECT pg_sleep(3)", logger: logger) }
        }
        #expect(failed?.code == .unavailable, "\(String(describing: failed))")
    }

    @Test func aStandbysClaimGetsThroughWhileTheFormerActiveIsStoppedInsideATransaction() async throws {
        let server = try #require(PostgresTrait.current)  // one server for the suite, a database per test
        let url = try await server.createDatabase()
        let name = String(url.split(separator: "/").last!)
        let former = WriteFence(resource: "node/0", epoch: Epoch(1))
        let (a, poolA, runningA) = try await Self.open(url, fence: former)
        defer { runningA.cancel() }
        _ = try await a.flows.commit([])  // A's claim at epoch 1

        // Every session of the node's pool carries the bound, sent when it opens.
        #expect(try await Self.limits(poolA) == ["2500ms", "2500ms"])

        // A takes the fencing row FOR SHARE in a transaction, and then sends nothing more: what
        // the server sees of a process stopped between two statements.
        let (holding, held) = AsyncStream<Void>.makeStream()
        let (resuming, resume) = AsyncStream<Void>.makeStream()
        let stalled = Task {
            try await poolA.transaction { connection, logger in
                try await PostgresFencing.check(connection, former, logger: logger)
                held.yield()
                for await _ in resuming { break }
                try await connection.query("INSERT INTO replay_markers (flow_id) VALUES ('stalled')", logger: logger)
            }
        }
        for await _ in holding { break }

        // B, the standby that won epoch 2, claims while A is still stopped.
        let (b, _, runningB) = try await Self.open(url, fence: WriteFence(resource: "node/0", epoch: Epoch(2)))
        defer { runningB.cancel() }
        let claimed: Void? = try await within(.seconds(90)) {
            try await eventually("the standby's claim", timeout: .seconds(90)) { (try? await b.flows.commit([])) != nil }
        }
        #expect(claimed != nil, "the claim gets through while the former active is stopped")

        // A resumes: the server ended its session (the node's own 30 s bound on a request, which
        // a stopped process could not keep, would say "did not answer"), and nothing of its
        // transaction is committed. A finds the connection closed, or, when the server's last
        // word is read before the close, that word: the idle-in-transaction timeout (25P03).
        resume.yield()
        let ended = await #expect(throws: StoreDatabaseError.self) { try await stalled.value }
        #expect(ended.map { $0.message.contains("closed") || $0.message.contains("25P03") } == true, "\(String(describing: ended))")
        #expect(try await server.rows("SELECT count(*) FROM replay_markers", database: name) == [["0"]])
        #expect(try await server.rows("SELECT epoch FROM hawser_fence WHERE resource = 'node/0'", database: name) == [["2"]])
    }
}
