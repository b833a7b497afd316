import AsyncHTTPClient
import Coordination
import Foundation
import HawserCore
import ServiceLifecycle
import Synchronization

/// The I/O around `WatchdogCore`: runs the election, spawns and signals the child, makes the
/// health requests and keeps time. Everything that happens becomes an `Event` on one stream, and
/// one loop hands each to the core and carries out the actions it returns, so the core sees
/// events one at a time and in order. Nothing here blocks a thread of the cooperative pool: a
/// child's exit arrives through its termination handler.
final class WatchdogShell: Service, Sendable {
    struct ChildCommand: Sendable {
        var executable: String
        var arguments: [String]
    }

    private enum Event: Sendable {
        case leadership(Epoch?)
        case exited(generation: Int, description: String)
        case health(generation: Int, problem: String?)
        case tick
        case shutdown
    }

    /// The core, shared with the election's health check (which asks whether to stand).
    private final class Core: Sendable {
        let state: Mutex<WatchdogCore>
        init(_ core: WatchdogCore) { state = Mutex(core) }
        func withLock<T>(_ body: (inout WatchdogCore) -> T) -> T { state.withLock { body(&$0) } }
    }

    private let core: Core
    private let election: any Election
    private let child: ChildCommand
    private let healthURL: String
    private let healthTimeout: Duration
    private let emit: @Sendable ([String: any Sendable]) -> Void
    private let events: AsyncStream<Event>
    private let input: AsyncStream<Event>.Continuation
    private let polls: AsyncStream<Int>
    private let pollRequests: AsyncStream<Int>.Continuation
    private let electionFailure = Mutex<(any Error)?>(nil)

    /// `makeElection` gets the health check that keeps this watchdog from standing while it backs off.
    init(settings: WatchdogCore.Settings, child: ChildCommand, health: String, healthTimeout: Duration,
         emit: @escaping @Sendable ([String: any Sendable]) -> Void,
         makeElection: (HealthChecks) throws -> any Election) throws {
        let core = Core(WatchdogCore(settings: settings))
        self.core = core
        self.child = child
        self.healthURL = health
        self.healthTimeout = healthTimeout
        self.emit = emit
        (events, input) = AsyncStream.makeStream(of: Event.self)
        (polls, pollRequests) = AsyncStream.makeStream(of: Int.self)
        let backoff = ClosureHealthCheck(name: "watchdog") { core.withLock { $0.standProblem(now: .now()) } }
        election = try makeElection(HealthChecks([backoff]))
    }

    func run() async throws {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.runElection() }
            group.addTask { await self.followRoles() }
            group.addTask { await self.pollHealth(http) }
            group.addTask { await self.keepTime() }
            await withGracefulShutdownHandler {
                await self.loop()
            } onGracefulShutdown: { [input] in
                input.yield(.shutdown)
            }
            // No child runs: withdraw (cancelling the election steps down and releases) and stop.
            group.cancelAll()
        }
        try? await http.shutdown()
        if let failure = electionFailure.withLock({ $0 }) { throw failure }
    }

    /// Hands every event to the core and carries out its actions until it says `.finish`.
    private func loop() async {
        var processes: [Int: Process] = [:]
        for await event in events {
            let now = Moment.now()
            let actions = core.withLock { core -> [WatchdogCore.Action] in
                switch event {
                case .leadership(let epoch): core.leadership(epoch, now: now)
                case .exited(let generation, let description): core.childExited(generation: generation, description: description, now: now)
                case .health(let generation, let problem): core.healthPolled(generation: generation, problem: problem, now: now)
                case .tick: core.tick(now: now)
                case .shutdown: core.shutdown(now: now)
                }
            }
            if case .exited(let generation, let description) = event {
                if processes.removeValue(forKey: generation) != nil {
                    emit(["event": "child-exited", "generation": generation, "status": description])
                }
                if processes.isEmpty { election.workStopped() }  // leadership given up may be released now
            }
            for action in actions {
                switch action {
                case .start(let generation, let epoch):
                    // Leadership given up from now on (a switchover, the preferred master) is released only
                    // once the child has exited, so that no other watchdog's child claims beside it.
                    guard election.workStarted(epoch: epoch) else {
                        input.yield(.exited(generation: generation, description: "not started: leadership at epoch \(epoch) ended first"))
                        continue
                    }
                    processes[generation] = await start(generation: generation, epoch: epoch)
                case .pollHealth(let generation):
                    pollRequests.yield(generation)
                case .terminate(let generation):
                    signal(processes[generation], SIGTERM)
                case .kill(let generation):
                    signal(processes[generation], SIGKILL)
                case .resign(let reason):
                    emit(["event": "resigning", "reason": reason])
                    await election.resign()
                case .report(let report):
                    emit(Self.line(report))
                case .finish:
                    return
                }
            }
        }
    }

    /// Starts the child with the epoch; its exit (or failure to start) comes back as an event.
    private func start(generation: Int, epoch: Epoch) async -> Process? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: child.executable)
        process.arguments = child.arguments
        var environment = ProcessInfo.processInfo.environment
        environment["HAWSER_FENCE_EPOCH"] = String(epoch.value)
        process.environment = environment
        process.terminationHandler = { [input] process in
            let status = process.terminationStatus
            let description = process.terminationReason == .uncaughtSignal ? "killed by signal \(status)" : "exit status \(status)"
            input.yield(.exited(generation: generation, description: description))
        }
        do {
            try await Self.runWithSignalsUnblocked(process)
        } catch {
            input.yield(.exited(generation: generation, description: "could not be started: \(error)"))
            return nil
        }
        emit(["event": "child-started", "generation": generation, "pid": Int(process.processIdentifier), "epoch": epoch.value])
        return process
    }

    /// Starts `process` from a thread of its own with no signal blocked. A child inherits the
    /// signal mask of the thread that spawns it, and the threads of the cooperative pool block
    /// most signals: a child started from one of them would never see the SIGTERM that stops it.
    private static func runWithSignalsUnblocked(_ process: Process) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread {
                var none = sigset_t()
                sigemptyset(&none)
                pthread_sigmask(SIG_SETMASK, &none, nil)
                do {
                    try ChildProcesses.start { try process.run() }
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }.start()
        }
    }

    /// Signals a child that has not been reaped yet (its pid cannot have been reused).
    private func signal(_ process: Process?, _ signal: Int32) {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, signal)
    }

    private func runElection() async {
        do {
            try await election.run()
        } catch {
            electionFailure.withLock { $0 = error }
        }
        // Whyever the election stopped, nothing is led any more: stop the child and finish.
        input.yield(.shutdown)
    }

    private func followRoles() async {
        var last: ElectionStatus?
        for await status in election.statuses() where status != last {
            if let event = roleEvent(id: election.candidate.id, status, after: last) { emit(event) }
            last = status
            input.yield(.leadership(status.role.epoch))
        }
    }

    /// One health request at a time, as the core asks for them.
    private func pollHealth(_ http: HTTPClient) async {
        for await generation in polls {
            let problem: String?
            do {
                let response = try await http.execute(HTTPClientRequest(url: healthURL), timeout: .nanoseconds(healthTimeout.nanosecondsValue))
                _ = try await response.body.collect(upTo: 1 << 16)
                problem = (200..<300).contains(response.status.code) ? nil : "HTTP \(response.status.code)"
            } catch {
                problem = "\(error)"
            }
            input.yield(.health(generation: generation, problem: problem))
        }
    }

    private func keepTime() async {
        let interval = core.withLock { $0.tickInterval }
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            input.yield(.tick)
        }
    }

    private static func line(_ report: WatchdogCore.Report) -> [String: any Sendable] {
        switch report {
        case .childHealthy(let generation): ["event": "child-healthy", "generation": generation]
        case .childFailed(let generation, let reason, let backoff):
            ["event": "child-failed", "generation": generation, "reason": reason, "backoffMs": backoff.millisecondsValue]
        case .stopping(let generation, let reason): ["event": "child-stopping", "generation": generation, "reason": reason]
        case .killing(let generation): ["event": "child-killing", "generation": generation]
        case .backoffReset: ["event": "backoff-reset"]
        }
    }
}
