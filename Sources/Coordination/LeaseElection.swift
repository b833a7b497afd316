import HawserCore
import Logging
import Synchronization

/// The `Election` on a lease in a database (PostgreSQL or SQLite): the I/O shell around
/// `ElectionCore`, applying `LeaseRules` in the backend's transactions. Every database call
/// happens on the `run()` task, one at a time, each bounded by `requestTimeout`; `resign` and
/// `handOver` change the core at once (the status with it) and queue their database work, which
/// the round loop then does at once.
public final class LeaseElection: Election {
    public let candidate: Candidate
    private let backend: any LeaseBackend
    private let configuration: LeaseConfiguration
    private let health: HealthChecks
    private let logger: Logger
    private let driver: ElectionDriver
    /// Random per process: tells this process apart from another one started with the same id.
    private let instance = String(UInt64.random(in: .min ... .max), radix: 36) + String(UInt64.random(in: .min ... .max), radix: 36)
    /// Store work decided outside `run()` (by `resign`, `handOver`), done before its next round.
    private let pending = Mutex<[ElectionCore.Action]>([])
    /// Cuts the pause between rounds short when work is queued: a resigning leader releases the
    /// lease now, so the next candidate need not wait a renew interval for it.
    private let wakeup = Wakeup()

    public init(candidate: Candidate, backend: any LeaseBackend, configuration: LeaseConfiguration,
                health: HealthChecks = HealthChecks(), logger: Logger = Logger(label: "hawser.election")) throws {
        try Candidate.validate(id: candidate.id)
        try configuration.validate()
        self.candidate = candidate
        self.backend = backend
        self.configuration = configuration
        self.health = health
        self.logger = logger
        self.driver = ElectionDriver(ElectionCore(me: candidate.id, timing: configuration.timing), logger: logger)
    }

    public var status: ElectionStatus { driver.status }
    public func leadsNow() -> Bool { driver.leads(at: .now()) }
    public func statuses() -> AsyncStream<ElectionStatus> { driver.statuses() }

    public func run() async throws {
        defer { driver.finish() }
        do {
            guard try await prepare() else { return await backend.close() }
        } catch {
            await backend.close()
            throw error
        }
        var failure: (any Error)?
        await withTaskGroup(of: Void.self) { group in
            // Steps a leader down when its lease may lapse, even while a round is stuck.
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.configuration.leaseDuration / 20)
                    self.driver.apply { $0.checkExpiry(now: .now()) }
                }
            }
            do { try await rounds() } catch { failure = error }
            group.cancelAll()
        }
        // Release and withdraw even though our task is cancelled: the next leader need not wait
        // for the lease to lapse. Awaited here, so the task has an owner.
        await Task {
            try? await self.performPending()  // a release held for the work, let go just before
            try? await self.perform(self.driver.apply { $0.stop() })
            try? await self.transaction("withdrawing") { [candidate, instance] _ in
                (LeaseWrites(withdraw: .init(id: candidate.id, instance: instance)), ())
            }
            await self.backend.close()
        }.value
        if let failure { throw failure }
    }

    /// Creates the tables, retrying while the database is unreachable (each new problem logged
    /// once); throws `notAuthorized` (a login refused, credentials that will not start fitting),
    /// as the ZooKeeper election does, so that a process fails at start-up rather than stand by.
    private func prepare() async throws -> Bool {
        var reported: String?
        while !Task.isCancelled {
            do {
                try await withDeadline(configuration.requestTimeout * 5, "creating the lease tables") { [backend] in try await backend.prepare() }
                if reported != nil { logger.info("lease tables ready") }
                return true
            } catch CoordinationError.notAuthorized(let message) {
                throw CoordinationError.notAuthorized(message)
            } catch {
                let problem = "\(error)"
                if problem != reported, !Task.isCancelled { logger.warning("lease tables not ready", metadata: ["problem": "\(problem)"]) }
                reported = problem
                try? await Task.sleep(for: configuration.renewInterval)
            }
        }
        return false
    }

    /// The round loop: health, queued work, one round, every renew interval until cancelled.
    private func rounds() async throws {
        while !Task.isCancelled {
            let problem = await health.problem()
            // Stopping cuts a check short (a probe's CancellationError): not a verdict on health,
            // and "unhealthy: not standing" at every graceful stop alarmed (found from outside).
            if Task.isCancelled { break }
            try await perform(driver.apply { $0.health(problem: problem, now: .now()) })
            try await performPending()
            try await perform(driver.apply { $0.tick(now: .now()) })
            try await performPending()
            await wakeup.sleep(for: Self.pause(until: configuration.renewInterval, now: .now(), phase: Self.phase))
        }
    }

    /// Where this process's rounds fall in each renew interval, as a fraction of it, chosen once a
    /// process: the elections of one process (a hot-hot process's partitions) run their rounds at
    /// the same moments, and so share a transaction (`SharedLeaseBackend`), while the processes on
    /// one machine stay apart. (A pause of one interval after each round let them drift apart.)
    private static let phase = Double.random(in: 0..<1)

    /// The pause from `now` to the next of the moments `phase` of the way into each `interval`.
    static func pause(until interval: Duration, now: Moment, phase: Double) -> Duration {
        let period = max(interval.nanosecondsValue, 1)
        let into = ((now.nanoseconds - Int64(Double(period) * phase)) % period + period) % period
        return .nanoseconds(period - into)
    }

    public func resign() async {
        queue(driver.apply { $0.resign(now: .now()) })
    }

    public func handOver(to id: String) async throws {
        try Candidate.validate(id: id)
        queue(driver.apply { $0.handOver(to: id, now: .now()) })
    }

    public func workStarted(epoch: Epoch) -> Bool { driver.ask { $0.workStarted(epoch) } }

    public func workStopped() { queue(driver.apply { $0.workStopped(now: .now()) }) }

    private func queue(_ actions: [ElectionCore.Action]) {
        guard !actions.isEmpty else { return }
        pending.withLock { $0 += actions }
        wakeup.wake()
    }

    private func performPending() async throws {
        try await perform(pending.withLock { actions in defer { actions = [] }; return actions })
    }

    private func perform(_ actions: [ElectionCore.Action]) async throws {
        for action in actions {
            switch action {
            case .round(let request):
                let view: ElectionView
                do {
                    view = try await transaction("a lease round") { [candidate, instance, configuration] state in
                        let outcome = LeaseRules.round(state, candidate: candidate, instance: instance, request: request, configuration: configuration)
                        return (LeaseWrites(lease: outcome.lease, candidate: outcome.candidate), outcome.view)
                    }
                } catch {
                    try await perform(driver.apply { $0.roundFailed(problem: "\(error)", now: .now()) })
                    continue
                }
                try await perform(driver.apply { $0.roundSucceeded(view, now: .now()) })
            case .release(let epoch, let target):
                await attempt("releasing the lease") { [candidate] state in
                    LeaseWrites(lease: LeaseRules.release(state, holder: candidate.id, epoch: epoch, handOverTo: target))
                }
            case .clearTarget:
                await attempt("clearing the switchover target") { [candidate] state in
                    LeaseWrites(lease: LeaseRules.clearTarget(state, holder: candidate.id))
                }
            case .requestSwitchover(let id):
                await attempt("asking for a switchover to \(id)") { [configuration] state in
                    LeaseWrites(lease: try LeaseRules.setTarget(state, id, configuration: configuration))
                }
            case .withdraw, .report:
                break  // a lease round records health; the driver logged reports
            case .fail(let error):
                throw error
            }
        }
    }

    /// Store work whose failure is harmless (a lease not released lapses by itself): logged only,
    /// and not when the election is stopping: the end of `run()` releases the last epoch led
    /// (`ElectionCore.stop`), outside the cancellation that cut this one short.
    private func attempt(_ what: String, _ body: @escaping @Sendable (LeaseState) throws -> LeaseWrites) async {
        do {
            try await transaction(what) { state in (try body(state), ()) }
        } catch {
            if !Task.isCancelled { logger.warning("\(what) failed", metadata: ["problem": "\(error)"]) }
        }
    }

    private func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T)) async throws -> T {
        try await withDeadline(configuration.requestTimeout, what) { [backend, configuration] in
            try await backend.transaction(election: configuration.name, body)
        }
    }
}
