import Logging
import Synchronization

/// The `Election` on a lease in a database (PostgreSQL or SQLite): the I/O shell around
/// `LeaseCandidateCore`. Every database call happens on the `run()` task, one at a time, each
/// bounded by `requestTimeout`; `resign` and `handOver` only change the core and queue the release.
public final class LeaseElection: Election {
    public let candidate: Candidate
    private let backend: any LeaseBackend
    private let configuration: LeaseConfiguration
    private let health: HealthChecks
    private let logger: Logger
    private let broadcast = StatusBroadcast()
    private let core: Mutex<LeaseCandidateCore>
    /// Releases (and switchover requests) decided outside `run()`, performed by it before its next round.
    private let pending = Mutex<[LeaseCandidateCore.Action]>([])
    private let targetRequests = Mutex<[String]>([])

    public init(candidate: Candidate, backend: any LeaseBackend, configuration: LeaseConfiguration,
                health: HealthChecks = HealthChecks(), logger: Logger = Logger(label: "hawser.election")) throws {
        try Candidate.validate(id: candidate.id)
        try configuration.validate()
        self.candidate = candidate
        self.backend = backend
        self.configuration = configuration
        self.health = health
        self.logger = logger
        self.core = Mutex(LeaseCandidateCore(me: candidate.id, configuration: configuration))
    }

    public var status: ElectionStatus { broadcast.status }
    public func statuses() -> AsyncStream<ElectionStatus> { broadcast.stream() }

    public func run() async throws {
        defer { broadcast.finish() }
        while true {  // the tables, once; a database that is down now may be up later
            do {
                try await withDeadline(configuration.requestTimeout * 5, "creating the lease tables") { [backend] in
                    try await backend.prepare()
                }
                break
            } catch is CancellationError {
                await backend.close()
                return
            } catch {
                logger.warning("lease tables not ready", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: configuration.renewInterval)
                if Task.isCancelled {
                    await backend.close()
                    return
                }
            }
        }
        broadcast.update { $0.role = .follower }
        await withTaskGroup(of: Void.self) { group in
            // Steps a leader down when its lease may lapse, even while a round is stuck.
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.configuration.leaseDuration / 20)
                    for action in self.core.withLock({ $0.checkExpiry(now: .now()) }) { self.publish(action) }
                }
            }
            await rounds()
            group.cancelAll()
        }
        // Release and withdraw even though our task is cancelled: the next leader need not wait
        // for the lease to lapse. Awaited here, so the task has an owner.
        await Task {
            await self.perform(self.core.withLock { $0.stop() })
            try? await withDeadline(self.configuration.requestTimeout, "withdrawing") { [backend, configuration, candidate] in
                try await backend.withdraw(election: configuration.name, candidate: candidate.id)
            }
            await self.backend.close()
        }.value
        broadcast.update { $0 = ElectionStatus(role: .notStanding, leader: nil) }
    }

    /// The round loop: health, queued work, one round, every renew interval until cancelled.
    private func rounds() async {
        while !Task.isCancelled {
            let problem = await health.problem()
            if let problem, core.withLock({ $0.isLeader }) { logger.warning("unhealthy", metadata: ["problem": "\(problem)"]) }
            await perform(core.withLock { $0.health(healthy: problem == nil, now: .now()) })
            broadcast.update { status in
                if problem != nil { status.role = .notStanding } else if status.role == .notStanding { status.role = .follower }
            }
            await performPending()
            await perform(core.withLock { $0.tick(now: .now()) })
            await performPending()
            try? await Task.sleep(for: configuration.renewInterval)
        }
    }

    public func resign() async {
        let actions = core.withLock { $0.resign(now: .now(), handOverTo: nil, reason: "resigned") }
        apply(actions)
    }

    public func handOver(to id: String) async throws {
        try Candidate.validate(id: id)
        if id == candidate.id { return }
        if core.withLock({ $0.isLeader }) {
            apply(core.withLock { $0.resign(now: .now(), handOverTo: id, reason: "handing over to \(id)") })
        } else {
            targetRequests.withLock { $0.append(id) }
        }
    }

    /// Status changes take effect at once; database work is queued for `run()`.
    private func apply(_ actions: [LeaseCandidateCore.Action]) {
        for action in actions {
            switch action {
            case .stepDown, .becomeLeader, .leaderChanged: publish(action)
            case .release, .round: pending.withLock { $0.append(action) }
            }
        }
    }

    private func performPending() async {
        let actions = pending.withLock { actions in
            defer { actions = [] }
            return actions
        }
        await perform(actions)
        for id in targetRequests.withLock({ requests in defer { requests = [] }; return requests }) {
            do {
                try await withDeadline(configuration.requestTimeout, "switchover") { [backend, configuration] in
                    try await backend.setTarget(election: configuration.name, id, leaseDuration: configuration.leaseDuration)
                }
            } catch {
                logger.warning("switchover request failed", metadata: ["to": "\(id)", "error": "\(error)"])
            }
        }
    }

    private func perform(_ actions: [LeaseCandidateCore.Action]) async {
        for action in actions {
            switch action {
            case .stepDown, .becomeLeader, .leaderChanged:
                publish(action)
            case .round(let mayAcquire, let healthy):
                do {
                    let observation = try await withDeadline(configuration.requestTimeout, "a lease round") {
                        [backend, configuration, candidate] in
                        try await backend.round(election: configuration.name, candidate: candidate, healthy: healthy,
                                                mayAcquire: mayAcquire, leaseDuration: configuration.leaseDuration)
                    }
                    await perform(core.withLock { $0.roundSucceeded(observation, now: .now()) })
                } catch {
                    logger.debug("lease round failed", metadata: ["error": "\(error)"])
                    await perform(core.withLock { $0.roundFailed(now: .now()) })
                }
            case .release(let epoch, let target):
                do {
                    try await withDeadline(configuration.requestTimeout, "releasing the lease") { [backend, configuration, candidate] in
                        try await backend.release(election: configuration.name, holder: candidate.id, epoch: epoch, handOverTo: target)
                    }
                } catch {
                    // Harmless: the lease then lapses by itself after leaseDuration.
                    logger.warning("lease release failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    private func publish(_ action: LeaseCandidateCore.Action) {
        switch action {
        case .becomeLeader(let epoch):
            logger.info("leading", metadata: ["epoch": "\(epoch)"])
            broadcast.update { $0 = ElectionStatus(role: .leader(epoch), leader: candidate.id) }
        case .stepDown(let epoch, let reason):
            logger.info("stepped down", metadata: ["epoch": "\(epoch)", "reason": "\(reason)"])
            broadcast.update { $0.role = .follower; if $0.leader == candidate.id { $0.leader = nil } }
        case .leaderChanged(let leader):
            broadcast.update { $0.leader = leader }
        case .round, .release:
            break
        }
    }
}
