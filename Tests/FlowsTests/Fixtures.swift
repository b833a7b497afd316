import Coordination
import Embedded
import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Logging
import Synchronization
import Testing

/// Logs only warnings and worse, so test output shows what matters.
let quietLogger: Logger = {
    var logger = Logger(label: "flows-test")
    logger.logLevel = .critical
    return logger
}()

/// A gate a flow waits at until the test opens it; the test can await a flow's arrival.
final class Gate: Sendable {
    private let opened: AsyncStream<Void>
    private let open: AsyncStream<Void>.Continuation
    private let arrived: AsyncStream<Void>
    private let arrive: AsyncStream<Void>.Continuation

    init() {
        (opened, open) = AsyncStream.makeStream()
        (arrived, arrive) = AsyncStream.makeStream()
    }

    func pass() async throws {
        arrive.yield()
        for await _ in opened {}
        try Task.checkCancellation()
    }

    func release() { open.finish() }

    /// Waits until a flow has reached the gate.
    func reached() async { for await _ in arrived { return } }
}

/// A flow store whose commits go through `commit` (which may delay, fail or lose them), whose reads of a record are reported to `read` once made, whose
/// journal reads first run `journal`, and whose read of the resumable flows is made by
/// `resumable` (given the read); every other call goes straight to `base`. `batchesCommits`: as
/// PostgreSQL's store, its commits are made in the flows' own tasks (default: as `base`'s).
final class InterceptedFlowStore: FlowStore {
    let base: any FlowStore
    let batchesCommits: Bool
    private let intercept: @Sendable ([FlowWrite]) async throws -> [FlowRecord?]
    private let read: @Sendable (FlowID) -> Void
    private let beforeJournal: @Sendable (FlowID) async throws -> Void
    private let readResumable: @Sendable (@Sendable () async throws -> [FlowRecord]) async throws -> [FlowRecord]

    init(_ base: any FlowStore, read: @escaping @Sendable (FlowID) -> Void = { _ in },
         journal: @escaping @Sendable (FlowID) async throws -> Void = { _ in },
         resumable: @escaping @Sendable (@Sendable () async throws -> [FlowRecord]) async throws -> [FlowRecord] = { try await $0() },
         batchesCommits: Bool? = nil, commit: @escaping @Sendable ([FlowWrite]) async throws -> [FlowRecord?]) {
        self.base = base
        self.batchesCommits = batchesCommits ?? base.batchesCommits
        self.read = read
        beforeJournal = journal
        readResumable = resumable
        intercept = commit
    }

    func commit(_ writes: [FlowWrite]) async throws -> [FlowRecord?] { try await intercept(writes) }
    func record(_ id: FlowID) async throws -> FlowRecord? {
        defer { read(id) }
        return try await base.record(id)
    }
    func record(clientRequestId: String) async throws -> FlowRecord? { try await base.record(clientRequestId: clientRequestId) }
    func journal(of id: FlowID) async throws -> [JournalEntry] {
        try await beforeJournal(id)
        return try await base.journal(of: id)
    }
    func list(_ query: FlowQuery) async throws -> [FlowRecord] { try await base.list(query) }
    func resumable() async throws -> [FlowRecord] { try await readResumable { [base] in try await base.resumable() } }
    func replayMarkers() async throws -> Set<FlowID> { try await base.replayMarkers() }
    func hasAskedNotary(_ id: FlowID) async throws -> Bool { try await base.hasAskedNotary(id) }
    func clearReplayMarkers(_ ids: [FlowID]) async throws { try await base.clearReplayMarkers(ids) }
}

/// What the test flows report to and take orders from, keyed by name.
final class Hooks: Sendable {
    private struct State {
        var calls: [String: Int] = [:]
        var transientFailures: [String: Int] = [:]
        var broken: Set<String> = []
    }
    private let state = Mutex(State())
    let gate = Gate()

    func call(_ name: String) throws {
        try state.withLock { state in
            state.calls[name, default: 0] += 1
            if let left = state.transientFailures[name], left > 0 {
                state.transientFailures[name] = left - 1
                throw TransientFlowError("\(name) is unavailable")
            }
            if state.broken.contains(name) { throw Broken() }
        }
    }

    func calls(_ name: String) -> Int { state.withLock { $0.calls[name] ?? 0 } }
    func failTransiently(_ name: String, times: Int) { state.withLock { $0.transientFailures[name] = times } }
    func breaks(_ name: String, _ broken: Bool) { state.withLock { if broken { $0.broken.insert(name) } else { $0.broken.remove(name) } } }

    struct Broken: Error, CustomStringConvertible { var description: String { "the service is broken" } }
}

/// Draws a random number, reports progress, calls an external service, optionally waits at the
/// gate, and returns what it saw.
struct StepsFlow: Flow {
    static let flowName = "Steps"
    var gated = false

    func run(_ context: FlowContext) async throws -> String {
        let hooks = context.services.service(Hooks.self)!
        let n = try await context.random()
        try await context.progress("one")
        let value = try await context.external("call") { _ in
            try hooks.call("call")
            return "v"
        }
        if gated {
            _ = try await context.external("gate") { _ in
                try await hooks.gate.pass()
                return true
            }
        }
        try await context.progress("two")
        return "\(n)-\(value)"
    }
}

/// Registered under StepsFlow's name to stand for a changed version of its code.
struct ChangedStepsFlow: Flow {
    static let flowName = "Steps"
    var gated = false

    func run(_ context: FlowContext) async throws -> String {
        let now = try await context.now()   // the old code drew a random number here
        return "\(now)"
    }
}

/// Fails on purpose.
struct FailingFlow: Flow {
    static let flowName = "Failing"
    func run(_ context: FlowContext) async throws -> Int {
        try await context.progress("trying")
        throw FlowFailure("nothing to do")
    }
}

/// A node database and an engine over it; `restart` builds a new engine on the same database,
/// as after a crash.
struct EngineHarness {
    let database: SQLiteNodeDatabase
    let hooks: Hooks

    /// `fence`: the database is shared, as hot-warm nodes share it, and this harness's writes are fenced.
    init(directory: String, hooks: Hooks = Hooks(), fence: WriteFence? = nil) throws {
        database = try SQLiteNodeDatabase(path: directory + "/node.sqlite", fence: fence)
        self.hooks = hooks
    }

    /// `store`: what the engine writes through (default: the database's flow store);
    /// `runsFlows` false: an engine that only queues starts (`FlowEngine.Configuration.runsFlows`).
    func engine(store: (any FlowStore)? = nil, hospital: HospitalPolicy = HospitalPolicy(initialDelay: .milliseconds(1), maxDelay: .milliseconds(5), maxAttempts: 5),
                runsFlows: Bool = true, notary: (any FlowNotary)? = nil, markerGrace: Duration = .zero,
                register: (inout FlowRegistry) -> Void = { $0.register(StepsFlow.self); $0.register(FailingFlow.self) })
        -> FlowEngine {
        var registry = FlowRegistry()
        register(&registry)
        var services = FlowServices()
        services.notary = notary
        services.add(hooks, as: Hooks.self)
        var configuration = FlowEngine.Configuration(hospital: hospital)
        configuration.runsFlows = runsFlows
        configuration.markerGrace = markerGrace
        return FlowEngine(store: store ?? database.flows, registry: registry, services: services,
                          configuration: configuration, logger: quietLogger)
    }
}

/// Runs `engine` as a service for the duration of `body`, then shuts it down.
func running<T: Sendable>(_ engine: FlowEngine, _ body: () async throws -> T) async throws -> T {
    let service = Task { try await engine.run() }
    defer { service.cancel() }
    let result = try await body()
    service.cancel()
    _ = await service.result
    return result
}
