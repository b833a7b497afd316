import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Logging
import PostgresStores
import Testing

/// A flow of `steps` effects, each durable before the next runs: one commit per step.
struct CommitStepsFlow: Flow {
    var steps: Int

    func run(_ context: FlowContext) async throws -> Int {
        var total = 0
        for step in 0..<steps {
            total += try await context.effect("step", "\(step)", durability: .now) { _ in step }
        }
        return total
    }
}

/// A flow engine on PostgreSQL whose server crashes (`pg_ctl stop -m immediate`) under many
/// concurrent flows (defect B of the node fault run): while it is down commits fail with a clear
/// error and flows wait in the hospital with bounded back-off; stopping the engine returns; once
/// the server is back every flow finishes, once.
@Suite(.enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"), .timeLimit(.minutes(5)))
struct PostgresCrashTests {
    static let flows = 48, steps = 400

    /// An engine over a new database of `server`, with the database's pool running.
    struct Harness {
        let database: PostgresDatabase
        let node: PostgresNodeDatabase
        let pool: Task<Void, any Error>

        init(_ server: PostgresServer) async throws {
            database = try await PostgresDatabase.connect(url: try await server.createDatabase(), password: nil, timeout: .seconds(10),
                                                          logger: quietLogger)
            let database = database
            pool = Task { try await database.run() }
            node = try await PostgresNodeDatabase.open(database)
        }

        func engine() -> FlowEngine {
            var registry = FlowRegistry()
            registry.register(CommitStepsFlow.self)
            // Retries every 50 to 400 ms, for longer than any outage here lasts.
            let hospital = HospitalPolicy(initialDelay: .milliseconds(50), maxDelay: .milliseconds(400), maxAttempts: 10_000)
            return FlowEngine(store: node.flows, registry: registry, services: FlowServices(), configuration: .init(hospital: hospital),
                              logger: quietLogger)
        }

        func close() async {
            pool.cancel()
            _ = await pool.result
        }
    }

    /// An engine on `harness` running the flows; returns once some of their steps are durable.
    func startFlows(_ harness: Harness) async throws -> (FlowEngine, [FlowID]) {
        let engine = harness.engine()
        try await engine.resumeUnfinished()
        var ids = [FlowID]()
        for index in 0..<Self.flows {
            ids.append(try await engine.start(CommitStepsFlow(steps: Self.steps), clientRequestId: "crash-\(index)").id)
        }
        try await eventually("steps committed before the crash") {
            let journal = try await harness.node.flows.journal(of: ids[0])
            return journal.count >= 3
        }
        return (engine, ids)
    }

    @Test func aFlowThatFindsTheDatabaseUnreachableIsRetriedNotParked() {
        // A flow's vault read meets the store's own error, not the engine's TransientFlowError:
        // before, the hospital parked the flow for an operator ("unexpected error").
        let policy = HospitalPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(1), maxAttempts: 3)
        #expect(policy.treat(StoreDatabaseError(.unavailable, "PostgreSQL at db:5432 is down"), attempts: 0) == .retry(after: .milliseconds(100)))
        #expect(policy.treat(StoreDatabaseError(.unavailable, "down"), attempts: 3) == .park("still failing after 3 retries: down (database_unavailable)"))
        guard case .park = policy.treat(StoreDatabaseError(.schemaTooNew, "newer tables"), attempts: 0) else {
            Issue.record("a schema of another version is no transient error")
            return
        }
    }

    @Test func flowsFinishOnceAfterACrashUnderLoad() async throws {
        let server = try await PostgresServer.start(durableCommits: true)
        defer { server.stop() }
        let harness = try await Harness(server)
        let (engine, ids) = try await startFlows(harness)

        try await server.restartImmediately()

        // Before defect B was mended, on a loaded machine some runs stopped here: a statement
        // sent on a connection the crash had closed (PostgresNIO's ROLLBACK after a failed one)
        // was never answered, and the group committer waited for it for ever
        // (`PostgresCallBoundTests`).
        let ended = try await within(.seconds(120)) {
            for id in ids { _ = try await engine.waitForEnd(id, timeout: .seconds(120)) }
            return try await harness.node.flows.counts()
        }
        #expect(ended == [.completed: Self.flows], "\(String(describing: ended))")
        for id in ids {
            let record = try #require(try await harness.node.flows.record(id))
            #expect(record.result == Array("\((0..<Self.steps).reduce(0, +))".utf8))
        }
        let stopped: Void? = try await within(.seconds(30)) { await engine.stop() }
        #expect(stopped != nil, "the engine's stop returns")
        _ = try await within(.seconds(30)) { await harness.close() }
    }

    @Test func whileTheDatabaseIsDownCommitsFailAndTheEngineStops() async throws {
        let server = try await PostgresServer.start(durableCommits: true)
        defer { server.stop() }
        let harness = try await Harness(server)
        let (engine, ids) = try await startFlows(harness)

        try await server.crash()
        // A start fails with the store's error, within the bound, and stores nothing; the engine's
        // stop returns.
        let refusal: String
        do {
            _ = try await within(.seconds(30)) { try await engine.start(CommitStepsFlow(steps: 1), clientRequestId: "while-down") }
            refusal = "none"
        } catch {
            refusal = "\(error)"
        }
        #expect(refusal.contains("database_unavailable"), "\(refusal)")
        let stopped: Void? = try await within(.seconds(30)) { await engine.stop() }
        #expect(stopped != nil, "the engine's stop returns while the database is down")

        // A new engine (the node's successor) finishes every flow once the server is back.
        try await server.startAgain()
        var successor: FlowEngine?
        try await eventually("the successor resumes", timeout: .seconds(120)) {
            let engine = harness.engine()
            do {
                try await engine.resumeUnfinished()
                successor = engine
                return true
            } catch {
                return false
            }
        }
        let next = try #require(successor)
        for id in ids {
            let record = try await next.waitForEnd(id, timeout: .seconds(120))
            #expect(record.status == .completed, "\(record)")
        }
        #expect(try await harness.node.flows.record(clientRequestId: "while-down") == nil)
        await next.stop()
        await harness.close()
    }
}
