import HawserCore
import Coordination
import Logging
import Synchronization
import ZooKeeper

/// The `Election` on ZooKeeper: the I/O shell around `ElectionCore`. Each candidate owns an
/// ephemeral-sequential node, the lowest claims the epoch, the others each watch the node before
/// their own. Leadership lasts only while the session is known to be alive: on `suspended` the
/// leader stops acting at once, and a leader whose node vanished stops at its next round.
///
/// One task (`run()`) does every request, each bounded by `requestTimeout`, on a session of its
/// own or on the one the process's elections share (`ZooKeeperSharedSession`). `resign` and
/// `handOver` change the core at once and queue their requests, which the round loop then sends
/// at once (a resigning leader's node is gone at once, so the next candidate's watch fires
/// without waiting for a check interval).
public final class ZooKeeperElection: Election {
    public let candidate: Candidate
    private let configuration: ZooKeeperElectionConfiguration
    private let health: HealthChecks
    private let logger: Logger
    private let driver: ElectionDriver
    private let pending = Mutex<[ElectionCore.Action]>([])
    private let wakeup = Wakeup()
    private let shared: ZooKeeperSharedSession?

    /// `session`: the process's session, shared with its other elections (their nodes differ by
    /// election name); nil: a session of its own.
    public init(candidate: Candidate, configuration: ZooKeeperElectionConfiguration, health: HealthChecks = HealthChecks(),
                sharing session: ZooKeeperSharedSession? = nil, logger: Logger = Logger(label: "hawser.election")) throws {
        try Candidate.validate(id: candidate.id)
        try configuration.validate()
        self.candidate = candidate
        self.configuration = configuration
        self.health = health
        self.shared = session
        self.logger = logger
        self.driver = ElectionDriver(ElectionCore(me: candidate.id, timing: configuration.timing), logger: logger)
    }

    public var status: ElectionStatus { driver.status }
    public func leadsNow() -> Bool { driver.leads(at: .now()) }
    public func statuses() -> AsyncStream<ElectionStatus> { driver.statuses() }

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

    public func run() async throws {
        defer { driver.finish() }
        let sessions = shared ?? ZooKeeperSharedSession()  // a session of its own, closed at the end
        var reported: String?
        var failure: (any Error)?
        while !Task.isCancelled, failure == nil {
            let store: ZooKeeperStore
            do {
                store = ZooKeeperStore(client: try await sessions.client(configuration, logger: logger), configuration: configuration,
                                       candidate: candidate)
                if reported != nil { logger.info("the election is open on ZooKeeper again") }
                reported = nil
            } catch let error as CoordinationError {
                failure = error  // credentials that do not fit will not start fitting
                break
            } catch {
                if Task.isCancelled { break }
                // Unreachable, or a race with another candidate setting the election's nodes up
                // (`badVersion`): it was logged "cannot reach ZooKeeper" (found from outside).
                if "\(error)" != reported {
                    logger.warning("could not open the election on ZooKeeper; trying again", metadata: ["problem": "\(error)"])
                }
                reported = "\(error)"
                try? await Task.sleep(for: configuration.checkInterval)
                continue
            }
            var place = ZooKeeperStore.Place()
            do {
                try await session(store, &place)
            } catch let error as CoordinationError {
                failure = error
            } catch {
                if !Task.isCancelled { logger.warning("ZooKeeper session ended", metadata: ["problem": "\(error)"]) }
            }
            driver.apply { $0.connectionLost(reason: Task.isCancelled ? "stopping" : "session lost", now: .now()) }
            // Our node goes at once, so that the next candidate need not wait for the session's
            // expiry (a shared session outlives this election); in a task of its own (awaited
            // here) so that our cancellation does not cancel it.
            await Task { [place] in await self.withdraw(store, place) }.value
        }
        driver.apply { $0.stop() }
        if shared == nil { await Task { await sessions.close() }.value }
        if let failure { throw failure }
    }

    /// Stands for the life of one session; returns when the session expired or closed, or when
    /// the election stops. `place` is where the session left our node.
    private func session(_ store: ZooKeeperStore, _ place: inout ZooKeeperStore.Place) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Stops leadership the moment the connection is lost, whatever the loop is doing.
            group.addTask {
                for await state in store.client.states() where state != .connected && state != .reconnected {
                    self.driver.apply { $0.connectionLost(reason: "connection to ZooKeeper \(state)", now: .now()) }
                }
            }
            // Stops leadership when it was not confirmed in time, even while a request hangs.
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.configuration.checkInterval / 4)
                    self.driver.apply { $0.checkExpiry(now: .now()) }
                }
            }
            defer { group.cancelAll() }
            try await rounds(store, &place)
        }
    }

    /// Deletes our node if the session still lives (an expired one took it along).
    private func withdraw(_ store: ZooKeeperStore, _ place: ZooKeeperStore.Place) async {
        guard place.program.node != nil, store.client.state == .connected || store.client.state == .reconnected else { return }
        var place = place
        do {
            try await store.withdraw(&place)
        } catch {
            logger.warning("withdrawing at the end failed; the node goes with the session", metadata: ["problem": "\(error)"])
        }
    }

    private func rounds(_ store: ZooKeeperStore, _ place: inout ZooKeeperStore.Place) async throws {
        while !Task.isCancelled {
            switch store.client.state {
            case .expired, .closed: return
            case .suspended:
                for await state in store.client.states() where state != .suspended {
                    if state == .expired || state == .closed { return }
                    break
                }
                continue
            case .connected, .reconnected:
                break
            }
            do {
                let problem = await health.problem()
                if Task.isCancelled { return }  // a check cut short by the stop is no verdict (as in `LeaseElection`)
                try await perform(driver.apply { $0.health(problem: problem, now: .now()) }, store, &place)
                try await perform(pending.withLock { actions in defer { actions = [] }; return actions }, store, &place)
                try await perform(driver.apply { $0.tick(now: .now()) }, store, &place)
            } catch let error as ZooKeeperError where error == .sessionExpired || error == .closed {
                return
            } catch let fatal as Fatal {
                throw fatal.error
            } catch {
                logger.debug("election step failed", metadata: ["problem": "\(error)"])
            }
            if let state = await store.wait(place, wakeup: wakeup), state == .expired || state == .closed { return }
        }
    }

    private func perform(_ actions: [ElectionCore.Action], _ store: ZooKeeperStore, _ place: inout ZooKeeperStore.Place) async throws {
        for action in actions {
            switch action {
            case .round(let request):
                let view: ElectionView
                do {
                    view = try await store.round(request, &place)
                } catch let error as ZooKeeperError where error == .sessionExpired || error == .closed {
                    throw error
                } catch {
                    try await perform(driver.apply { $0.roundFailed(problem: "\(error)", now: .now()) }, store, &place)
                    continue
                }
                try await perform(driver.apply { $0.roundSucceeded(view, now: .now()) }, store, &place)
            case .release(_, let target):
                try await attempt("releasing leadership") { try await store.release(handOverTo: target, &place) }
            case .withdraw:
                try await attempt("withdrawing") { try await store.withdraw(&place) }
            case .clearTarget:
                try await attempt("clearing the switchover target") { try await store.setString(.switchover, nil, &place) }
            case .requestSwitchover(let id):
                try await attempt("asking for a switchover to \(id)") { try await store.setString(.switchover, id, &place) }
            case .report:
                break
            case .fail(let error):
                throw Fatal(error: error)
            }
        }
    }

    /// Store work whose failure the next round puts right (a node not moved or deleted: an
    /// unhealthy candidate's round deletes it; a setting not written): logged, and the actions
    /// after it still done. Skipping them could skip the core's `.round`, and the core, waiting
    /// for that round's answer, would never start another (the ZooKeeper election's simulation,
    /// seed 86). Only the session's end stops the loop.
    private func attempt(_ what: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ZooKeeperError where error == .sessionExpired || error == .closed {
            throw error
        } catch {
            // Not when stopping: closing the session at the end of `run()` releases everything.
            if !Task.isCancelled { logger.warning("\(what) failed", metadata: ["problem": "\(error)"]) }
        }
    }

    /// The core gave up (a duplicate): ends `run()` with `error`.
    private struct Fatal: Error {
        let error: CoordinationError
    }
}
