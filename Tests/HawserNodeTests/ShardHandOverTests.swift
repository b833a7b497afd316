import Coordination
import Embedded
import Flows
import Foundation
@testable import HawserNode
import HawserTestSupport
import ServiceLifecycle
import Synchronization
import Testing

/// Two hot-warm shard services in one process (A and B), on one SQLite lease and node database:
/// a switchover or a graceful shutdown hands the shard from A to B only once A's engine has stopped
/// and cleared the replay markers of the flows it resumed (defect C's hand-over window), and a stop
/// that hangs holds the shard back for a bounded while only.
@Suite(.timeLimit(.minutes(10))) struct ShardHandOverTests {
    /// A flow that waits at `StopGate` without writing anything. Once the gate is stubborn, a
    /// waiting flow ignores cancellation until the gate opens: its engine's stop takes as long.
    struct Stubborn: Flow {
        func run(_ context: FlowContext) async throws -> String {
            try await context.services.service(StopGate.self)!.pass()
            return "passed"
        }
    }

    final class StopGate: Sendable {
        private struct State {
            var open = false
            var stubborn = false
            var arrivals = 0
            var waiting: [UUID: CheckedContinuation<Void, any Error>] = [:]
        }
        private let state = Mutex(State())

        var arrivals: Int { state.withLock { $0.arrivals } }
        func makeStubborn() { state.withLock { $0.stubborn = true } }

        func open() {
            let waiting = state.withLock { state in
                state.open = true
                defer { state.waiting = [:] }
                return state.waiting.values
            }
            for continuation in waiting { continuation.resume() }
        }

        func pass() async throws {
            let id = UUID()
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let now: Result<Void, any Error>? = state.withLock { state in
                        state.arrivals += 1
                        if state.open { return .success(()) }
                        if Task.isCancelled, !state.stubborn { return .failure(CancellationError()) }
                        state.waiting[id] = continuation
                        return nil
                    }
                    if let now { continuation.resume(with: now) }
                }
            } onCancel: {
                let cancelled = state.withLock { state in state.stubborn ? nil : state.waiting.removeValue(forKey: id) }
                cancelled?.resume(throwing: CancellationError())
            }
        }
    }

    /// One hot-warm process: its election, fence, node database and what it serves; its shard
    /// service runs in a service group, as in `hawser node run`.
    struct Member {
        let serving: ServingState<FlowEngine>
        let fence: WriteFence
        let database: SQLiteNodeDatabase
        let administration: LeaseAdministration
        let rounds: Rounds
        let group: ServiceGroup
        let task: Task<Void, any Error>

        /// Shuts down gracefully (as on SIGTERM) and waits until it has.
        func stop() async throws {
            await group.triggerGracefulShutdown()
            try await task.value
        }
    }

    /// Election rounds a member has run so far (one health check before each).
    final class Rounds: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func add() { count.withLock { $0 += 1 } }
    }

    static func services(_ gate: StopGate) -> FlowServices {
        var services = FlowServices()
        services.add(gate, as: StopGate.self)
        return services
    }

    static func registry() -> FlowRegistry {
        var registry = FlowRegistry()
        registry.register(Stubborn.self)
        return registry
    }

    /// Starts candidate `id` on `dir`'s lease and node database. `lease`: its duration; leadership
    /// given up is held for the engine's stop 0.9 of it at most.
    static func member(_ id: String, in dir: String, lease: Duration, gate: StopGate) throws -> Member {
        var configuration = LeaseConfiguration()
        configuration.leaseDuration = lease
        configuration.renewInterval = .milliseconds(200)
        configuration.requestTimeout = lease / 3
        configuration.standAside = .milliseconds(300)
        let rounds = Rounds()
        let checks = HealthChecks([ClosureHealthCheck(name: "rounds") {
            rounds.add()
            return nil
        }])
        let election = try LeaseElection(candidate: Candidate(id: id, addresses: ["http://127.0.0.1:1"]),
                                         backend: try SQLiteLeaseBackend(path: dir + "/lease.sqlite", roundsOf: configuration), configuration: configuration,
                                         health: checks, logger: quietLogger)
        let administration = LeaseAdministration(backend: try SQLiteLeaseBackend(path: dir + "/lease.sqlite", roundsOf: configuration), configuration: configuration)
        let fence = WriteFence(resource: "node/0")
        let database = try SQLiteNodeDatabase(path: dir + "/node.sqlite", fence: fence)
        let serving = ServingState<FlowEngine>(.standby(active: nil))
        let work = FlowShardWork(store: database.flows, claim: { try await database.flows.claim() }, draining: { false }) { store in
            FlowEngine(store: store, registry: registry(), services: services(gate), logger: quietLogger)
        }
        let service = ShardService(stand: ShardStand(election: election, administration: administration, timeout: .seconds(2),
                                                     logger: quietLogger),
                                   fence: fence, work: work, serving: serving)
        let group = ServiceGroup(configuration: .init(services: [.init(service: service)], logger: quietLogger))
        return Member(serving: serving, fence: fence, database: database, administration: administration, rounds: rounds,
                      group: group, task: Task { try await group.run() })
    }

    /// A flow left unfinished (waiting at the gate) by an earlier process, so that the next owner
    /// resumes it and sets its replay marker.
    static func unfinishedFlow(in dir: String, gate: StopGate) async throws -> FlowID {
        let database = try SQLiteNodeDatabase(path: dir + "/node.sqlite")
        let engine = FlowEngine(store: database.flows, registry: registry(), services: services(gate), logger: quietLogger)
        let id = try await engine.start(Stubborn()).id
        try await eventually("the flow waits at the gate") { gate.arrivals == 1 }
        await engine.stop()
        return id
    }

    /// A flow left unfinished, then A serving with the flow resumed (its marker set), and B standing
    /// by; both on `lease`. The caller cancels both members' tasks when it ends.
    static func pairWithAResumedFlow(in dir: String, lease: Duration, gate: StopGate) async throws -> (id: FlowID, a: Member, b: Member) {
        let id = try await unfinishedFlow(in: dir, gate: gate)
        let a = try member("A", in: dir, lease: lease, gate: gate)
        do {
            try await eventually("A serves") { a.serving.isActive }
            try await eventually("A resumed the flow") { gate.arrivals >= 2 }
            let b = try member("B", in: dir, lease: lease, gate: gate)
            do {
                try await eventually("B stands") { b.rounds.value > 1 }
            } catch {
                b.task.cancel()
                throw error
            }
            return (id, a, b)
        } catch {
            a.task.cancel()
            throw error
        }
    }

    /// Waits until the flow has ended or been parked; returns its record.
    static func settled(_ id: FlowID, in member: Member) async throws -> FlowRecord {
        try await eventually("the flow completes or is parked") {
            try await member.database.flows.record(id).map { $0.status != .running } ?? false
        }
        return try #require(try await member.database.flows.record(id))
    }

    /// Failed before the fix: A released the lease at once, B claimed and resumed the flow while
    /// A's engine was still stopping, found A's replay marker, and parked the healthy flow.
    @Test(.timeLimit(.minutes(2))) func aSwitchoverStopsTheEngineBeforeTheSuccessorClaims() async throws {
        let dir = try TemporaryDirectory()
        let gate = StopGate()
        defer { gate.open() }  // a failed test leaves no stop hanging
        // A lease of 30 s: the hold's bound (0.9 of it) must outlast B's three rounds on a loaded machine.
        let (id, a, b) = try await Self.pairWithAResumedFlow(in: dir.path, lease: .seconds(30), gate: gate)
        defer { a.task.cancel(); b.task.cancel() }
        #expect(try await a.database.flows.replayMarkers() == [id])

        // Stubborn only now: a stop before this (a lease lapsed on a loaded machine) ends at once.
        gate.makeStubborn()
        try await a.administration.switchover(to: "B")
        try await eventually("A stands by") { !a.serving.isActive }
        // A's engine now waits for the flow to give way. B must not claim meanwhile: it may run
        // rounds, but the lease stays A's until A's stop is done.
        let seen = b.rounds.value
        try await eventually("B serves or runs three rounds") { b.serving.isActive || b.rounds.value >= seen + 3 }
        #expect(!b.serving.isActive, "B took the shard over while A's engine was still stopping")
        gate.open()

        try await eventually("B serves") { b.serving.isActive }
        let record = try await Self.settled(id, in: b)
        #expect(record.status == .completed, "\(record.status): \(record.error ?? "")")
        #expect(try #require(b.fence.epoch) > Epoch(1))
        try await b.stop()
        try await a.stop()
    }

    /// Failed before the fix: a graceful shutdown cancelled the election with the rest, which
    /// released the lease while the engine was still stopping; B claimed and parked the flow.
    @Test(.timeLimit(.minutes(2))) func aGracefulShutdownStopsTheEngineBeforeTheSuccessorClaims() async throws {
        let dir = try TemporaryDirectory()
        let gate = StopGate()
        defer { gate.open() }  // a failed test leaves no stop hanging
        // A lease of 30 s: the hold's bound (0.9 of it) must outlast B's three rounds on a loaded machine.
        let (id, a, b) = try await Self.pairWithAResumedFlow(in: dir.path, lease: .seconds(30), gate: gate)
        defer { a.task.cancel(); b.task.cancel() }

        gate.makeStubborn()
        await a.group.triggerGracefulShutdown()
        try await eventually("A stands by") { !a.serving.isActive }
        let seen = b.rounds.value
        try await eventually("B serves or runs three rounds") { b.serving.isActive || b.rounds.value >= seen + 3 }
        #expect(!b.serving.isActive, "B took the shard over while A's engine was still stopping")
        gate.open()

        try await a.task.value
        #expect(try await a.administration.snapshot().leader != "A", "A released the lease before it ended")
        try await eventually("B serves") { b.serving.isActive }
        let record = try await Self.settled(id, in: b)
        #expect(record.status == .completed, "\(record.status): \(record.error ?? "")")
        try await b.stop()
    }

    /// A stop that hangs holds leadership for the bound only: B takes over without A's stop (and,
    /// as after a crash, parks the flow A resumed; not this test's point).
    @Test(.timeLimit(.minutes(2))) func aStopThatHangsDelaysTheHandOverByTheBoundOnly() async throws {
        let dir = try TemporaryDirectory()
        let gate = StopGate()
        defer { gate.open() }  // a failed test leaves no stop hanging
        let (_, a, b) = try await Self.pairWithAResumedFlow(in: dir.path, lease: .seconds(5), gate: gate)
        defer { a.task.cancel(); b.task.cancel() }

        // Stubborn only now: a stop before this (a lease lapsed on a loaded machine) ends at once.
        gate.makeStubborn()
        try await a.administration.switchover(to: "B")
        // Failed 1 full run in 3 (loaded) before A stopped standing while its stop hangs: B's
        // rounds lagged, the lease's reservation for B lapsed, and A took the lease back though
        // it could not serve.
        try await eventually("B serves while A's stop hangs") { b.serving.isActive }
        #expect(!a.serving.isActive)
        #expect(try await a.administration.snapshot().leader == "B")
        gate.open()
        try await b.stop()
        try await a.stop()
    }
}
