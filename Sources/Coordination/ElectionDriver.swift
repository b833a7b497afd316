import Logging
import Synchronization

/// The one place where a shell touches its `ElectionCore`: every transition runs under one lock,
/// and the status it leads to is handed to the watchers *inside* that lock. So the order in which
/// watchers hear statuses is the order of the transitions, and a shell that was paused between
/// deciding and publishing cannot publish `leader` after a later transition stepped it down.
public final class ElectionDriver: Sendable {
    private let core: Mutex<ElectionCore>
    private let broadcast = StatusBroadcast()
    private let logger: Logger

    public init(_ core: ElectionCore, logger: Logger) {
        self.core = Mutex(core)
        self.logger = logger
    }

    public var status: ElectionStatus { broadcast.status }

    /// `Election.leadsNow`: leading, and the last confirmation valid at `now`.
    public func leads(at now: Moment) -> Bool { ask { core in core.leading.map { now < $0.validUntil } ?? false } }
    public func statuses() -> AsyncStream<ElectionStatus> { broadcast.stream() }

    /// Runs one transition and publishes its status in the same critical section. Reports are
    /// logged here, so every backend words them alike; the other actions are the shell's to do.
    @discardableResult
    public func apply<E: Error>(_ transition: (inout ElectionCore) throws(E) -> [ElectionCore.Action]) throws(E) -> [ElectionCore.Action] {
        let actions = try core.withLock { core throws(E) -> [ElectionCore.Action] in
            let actions = try transition(&core)
            let status = core.status
            broadcast.update { $0 = status }
            return actions
        }
        var rest: [ElectionCore.Action] = []
        for action in actions {
            if case .report(let report) = action { log(report) } else { rest.append(action) }
        }
        return rest
    }

    /// Asks the core a question that changes no status and leads to no action, under the same lock.
    public func ask<T>(_ question: (inout ElectionCore) -> T) -> T {
        core.withLock { question(&$0) }
    }

    /// Ends every status stream (the election stopped).
    public func finish() { broadcast.finish() }

    private func log(_ report: ElectionCore.Report) {
        switch report {
        case .leading(let epoch): logger.info("leading", metadata: ["epoch": "\(epoch)"])
        case .steppedDown(let epoch, let reason): logger.info("stepped down", metadata: ["epoch": "\(epoch)", "reason": "\(reason)"])
        case .unhealthy(let problem): logger.warning("unhealthy: not standing", metadata: ["problem": "\(problem)"])
        case .healthy: logger.info("healthy: standing")
        case .storeProblem(let problem):
            // A round cut short because this process is stopping (its task cancelled) is not news.
            logger.log(level: Task.isCancelled ? .debug : .warning, "coordination store problem", metadata: ["problem": "\(problem)"])
        case .storeRecovered: logger.info("coordination store reachable again")
        case .duplicateSeen:
            // Said as what is known: after a lost session, this process's own old candidacy looks
            // the same until the store drops it (an operator read "another process" with none running).
            logger.warning("""
                a candidacy with this candidate id is in the store: another process's, or this process's own from a \
                session the store has not yet ended; waiting for it to go before giving up
                """)
        case .epochWentBack(let offered, let seen):
            logger.error("the store offered an epoch below one already seen (tampered with or rolled back): not leading with it",
                         metadata: ["offered": "\(offered)", "seen": "\(seen)"])
        case .workStopOverdue:
            logger.warning("the work under the leadership given up has not stopped within the bound: releasing it all the same")
        }
    }
}
