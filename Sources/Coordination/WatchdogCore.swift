/// The decisions of a hot-cold watchdog (design document 004), without I/O: when to start the
/// child, poll its health, stop it, kill it, resign leadership and back off. Time is an input; the
/// shell (`hawser watchdog`) spawns the process, makes the health requests, runs the election and
/// feeds back what happened.
///
/// The rules it keeps:
/// - A child runs only while this watchdog leads, and with the epoch it leads with; a new epoch
///   means a new child (the old one holds the old epoch for its whole life). An epoch it resigned
///   never gets a child again.
/// - A child that exits on its own, never becomes healthy within `startTimeout`, or fails
///   `healthFailures` polls in a row after being healthy has failed: the watchdog resigns at once
///   (another watchdog's child takes over) and stops standing until its back-off has passed.
/// - Back-off doubles with each failure in a row, from `backoffInitial` up to `backoffMax`, and is
///   forgotten once a child has stayed healthy for `backoffReset`.
/// - A child being stopped gets SIGTERM, then SIGKILL after `stopGrace`, or sooner: before the
///   election lets go of a leadership given up (`leadershipHold`), so that it never runs beside
///   the next leader's child.
/// - On shutdown the child is stopped first; `.finish` comes only once no child runs.
public struct WatchdogCore: Sendable {
    public struct Settings: Sendable, Hashable {
        public var healthInterval: Duration = .milliseconds(500)
        public var healthFailures = 3
        public var startTimeout: Duration = .seconds(60)
        public var stopGrace: Duration = .seconds(10)
        /// How long the election keeps a leadership given up while the child stops (its timing's
        /// `validity`); a child not gone by four fifths of it is killed. Nil: `stopGrace` alone.
        public var leadershipHold: Duration?
        public var backoffInitial: Duration = .seconds(1)
        public var backoffMax: Duration = .seconds(30)
        public var backoffReset: Duration = .seconds(60)

        public init() {}

        /// Sentences for every setting out of range (empty when all are fine).
        public func problems() -> [String] {
            var problems: [String] = []
            if healthInterval <= .zero { problems.append("the health interval must be positive") }
            if healthFailures < 1 { problems.append("health failures must be at least 1") }
            if startTimeout <= .zero { problems.append("the start timeout must be positive") }
            if stopGrace < .zero { problems.append("the stop grace must not be negative") }
            if let leadershipHold, leadershipHold <= .zero { problems.append("the leadership hold must be positive") }
            if backoffInitial <= .zero { problems.append("the initial back-off must be positive") }
            if backoffMax < backoffInitial { problems.append("the maximum back-off must be at least the initial one") }
            if backoffReset <= .zero { problems.append("the back-off reset period must be positive") }
            return problems
        }

        /// From SIGTERM to SIGKILL.
        var killAfter: Duration { leadershipHold.map { min(stopGrace, $0 * 4 / 5) } ?? stopGrace }

        /// The pause after `failures` failures in a row (1 for the first).
        public func backoff(afterFailures failures: Int) -> Duration {
            var delay = backoffInitial
            for _ in 1..<max(failures, 1) {
                delay = delay * 2
                if delay >= backoffMax { return backoffMax }
            }
            return min(delay, backoffMax)
        }
    }

    public enum Action: Sendable, Hashable {
        /// Start child number `generation` with `HAWSER_FENCE_EPOCH` = `epoch`; feed back
        /// `childExited` when it exits (or could not be started).
        case start(generation: Int, epoch: Epoch)
        /// Send one health request to the child; feed back `healthPolled`.
        case pollHealth(generation: Int)
        /// SIGTERM to the child.
        case terminate(generation: Int)
        /// SIGKILL to the child.
        case kill(generation: Int)
        /// Give leadership up now, so that another watchdog's child takes over.
        case resign(reason: String)
        case report(Report)
        /// No child runs and shutdown was asked: withdraw from the election and exit.
        case finish
    }

    public enum Report: Sendable, Hashable {
        case childHealthy(generation: Int)
        /// The child failed; the watchdog stands again after `backoff`.
        case childFailed(generation: Int, reason: String, backoff: Duration)
        case stopping(generation: Int, reason: String)
        case killing(generation: Int)
        case backoffReset
    }

    private struct Child: Sendable {
        var generation: Int
        var epoch: Epoch
        var startedAt: Moment
        var healthySince: Moment?
        var everHealthy = false
        var failedPolls = 0
        var pollInFlight = false
        var nextPollAt: Moment
        /// When SIGTERM was sent, and whether SIGKILL followed.
        var stopping: (since: Moment, killed: Bool)?
    }

    public let settings: Settings
    /// The epoch this watchdog leads with now, nil when it does not lead.
    public private(set) var epoch: Epoch?
    private var child: Child?
    private var generation = 0
    /// Failures in a row; the back-off grows with them.
    public private(set) var failures = 0
    /// No child starts (and the watchdog does not stand) before this moment.
    public private(set) var backoffUntil: Moment?
    /// The epoch this watchdog already resigned, so that it asks once.
    private var resignedEpoch: Epoch?
    public private(set) var shuttingDown = false
    private var finished = false

    public init(settings: Settings) {
        precondition(settings.problems().isEmpty, "Invalid settings: \(settings.problems())")
        self.settings = settings
    }

    /// The generation of the child running now (stopping or not), if any.
    public var runningGeneration: Int? { child?.generation }

    /// Why this watchdog must not stand for election now, or nil: the election's health check.
    /// Not while shutting down: leadership is kept until the child has exited, then released.
    public func standProblem(now: Moment) -> String? {
        if let until = backoffUntil, now < until {
            return "backing off after \(failures) failure\(failures == 1 ? "" : "s") for \((until - now).millisecondsValue) ms more"
        }
        return nil
    }

    // MARK: Events

    /// The election's role changed: leading with `epoch`, or not leading (nil).
    public mutating func leadership(_ epoch: Epoch?, now: Moment) -> [Action] {
        guard epoch != self.epoch else { return [] }
        self.epoch = epoch
        var actions: [Action] = []
        if let running = child, running.stopping == nil, running.epoch != epoch {
            let reason = epoch == nil ? "leadership lost" : "leadership changed to epoch \(epoch!)"
            actions += stopChild(reason: reason, now: now)
        }
        return actions + tick(now: now)
    }

    /// The child exited (or could not be started), as `description` says.
    public mutating func childExited(generation: Int, description: String, now: Moment) -> [Action] {
        guard let running = child, running.generation == generation else { return [] }
        child = nil
        var actions: [Action] = []
        if running.stopping == nil {
            actions += fail(running, reason: "exited: \(description)", now: now)
        }
        return actions + tick(now: now)
    }

    /// A health request for child `generation` came back: nil if healthy, else what went wrong.
    public mutating func healthPolled(generation: Int, problem: String?, now: Moment) -> [Action] {
        guard var running = child, running.generation == generation, running.stopping == nil else { return [] }
        running.pollInFlight = false
        running.nextPollAt = now + settings.healthInterval
        var actions: [Action] = []
        if problem == nil {
            if !running.everHealthy { actions.append(.report(.childHealthy(generation: generation))) }
            running.everHealthy = true
            running.healthySince = running.healthySince ?? now
            running.failedPolls = 0
        } else {
            running.healthySince = nil
            if running.everHealthy { running.failedPolls += 1 }
        }
        child = running
        if let problem, running.everHealthy, running.failedPolls >= settings.healthFailures {
            return actions + fail(running, reason: "unhealthy: \(problem)", now: now) + stopChild(reason: "unhealthy", now: now)
        }
        return actions + tick(now: now)
    }

    /// Stop the child and finish (SIGTERM to the watchdog, or the election gave up).
    public mutating func shutdown(now: Moment) -> [Action] {
        guard !shuttingDown else { return [] }
        shuttingDown = true
        var actions: [Action] = []
        if let running = child, running.stopping == nil { actions += stopChild(reason: "shutting down", now: now) }
        return actions + tick(now: now)
    }

    /// Time passed: the shell calls it at least every `tickInterval`.
    public mutating func tick(now: Moment) -> [Action] {
        guard !finished else { return [] }
        var actions: [Action] = []
        if var running = child {
            if let stopping = running.stopping {
                if !stopping.killed, now >= stopping.since + settings.killAfter {
                    running.stopping = (stopping.since, true)
                    child = running
                    actions += [.report(.killing(generation: running.generation)), .kill(generation: running.generation)]
                }
                return actions
            }
            if !running.everHealthy, now >= running.startedAt + settings.startTimeout {
                let reason = "not healthy within \(settings.startTimeout.millisecondsValue) ms of its start"
                return fail(running, reason: reason, now: now) + stopChild(reason: "never became healthy", now: now)
            }
            if let since = running.healthySince, now - since >= settings.backoffReset, failures > 0 {
                failures = 0
                backoffUntil = nil
                actions.append(.report(.backoffReset))
            }
            if !running.pollInFlight, now >= running.nextPollAt {
                running.pollInFlight = true
                child = running
                actions.append(.pollHealth(generation: running.generation))
            }
            return actions
        }
        if shuttingDown {
            finished = true
            return [.finish]
        }
        // A resigned epoch was released: another watchdog may lead already.
        guard let epoch, epoch != resignedEpoch else { return [] }
        if let until = backoffUntil, now < until {
            // Won while backing off (the election had not seen the health check yet): give it back.
            resignedEpoch = epoch
            return [.resign(reason: "backing off")]
        }
        generation += 1
        child = Child(generation: generation, epoch: epoch, startedAt: now, nextPollAt: now)
        return [.start(generation: generation, epoch: epoch)]
    }

    /// How often the shell must call `tick` at least, for the timings to hold.
    public var tickInterval: Duration { min(settings.healthInterval, .milliseconds(50)) }

    // MARK: Rules

    /// A failure of `running`: counts it, starts the back-off and resigns if leading with it.
    private mutating func fail(_ running: Child, reason: String, now: Moment) -> [Action] {
        failures += 1
        let backoff = settings.backoff(afterFailures: failures)
        backoffUntil = now + backoff
        var actions: [Action] = [.report(.childFailed(generation: running.generation, reason: reason, backoff: backoff))]
        if let epoch, resignedEpoch != epoch {
            resignedEpoch = epoch
            actions.append(.resign(reason: "child \(reason)"))
        }
        return actions
    }

    private mutating func stopChild(reason: String, now: Moment) -> [Action] {
        guard var running = child, running.stopping == nil else { return [] }
        running.stopping = (now, false)
        running.pollInFlight = false
        child = running
        return [.report(.stopping(generation: running.generation, reason: reason)), .terminate(generation: running.generation)]
    }
}
