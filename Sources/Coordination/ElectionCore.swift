/// The decisions of one candidate in one election, for every backend, without I/O: term and
/// epoch, health, resignation, switchover, the preferred master, duplicates, and the status to
/// publish. Time is an input (`Moment`); the core reads no clock and starts no task.
///
/// One core is one candidate in one election: a node that owns several shards runs one core per
/// shard, each with its own epoch. A shell (`LeaseElection`, `ZooKeeperElection`, later a node's
/// shard) drives it like this, always through `ElectionDriver`, which publishes `status` inside
/// the same lock as the transition, so a paused shell can never publish `leader` after the core
/// stepped down:
///
/// ```swift
/// let driver = ElectionDriver(ElectionCore(me: "A", timing: configuration.timing), logger: logger)
/// // Every interval (and `driver.apply { $0.checkExpiry(now: .now()) }` on a timer of its own,
/// // so that a round that hangs cannot keep a leader acting):
/// let problem = await healthChecks.problem()
/// try await perform(driver.apply { $0.health(problem: problem, now: .now()) })
/// try await perform(driver.apply { $0.tick(now: .now()) })
///
/// func perform(_ actions: [ElectionCore.Action]) async throws {   // reports were logged by the driver
///     for action in actions {
///         switch action {
///         case .round(let request):            // one trip to the store, then what it showed
///             do {
///                 let view = try await store.round(request)
///                 try await perform(driver.apply { $0.roundSucceeded(view, now: .now()) })
///             } catch {
///                 try await perform(driver.apply { $0.roundFailed(problem: "\(error)", now: .now()) })
///             }
///         case .release(let epoch, let target): try await store.release(epoch, reservedFor: target)
///         case .withdraw, .clearTarget, .requestSwitchover: ...  // store writes
///         case .report: break
///         case .fail(let error): throw error   // stop standing
///         }
///     }
/// }
/// ```
///
/// Safety rests on one rule: leadership confirmed by a round is acted on only until
/// `sentAt + timing.validity`, counted from when the round was *sent*, and every step down is
/// published before the release that lets another candidate lead. A leader whose owner reported
/// work running (`workStarted`) and that gives leadership up of its own accord releases it only
/// once that work has stopped (`workStopped`), or `timing.validity` later at most (`ReleaseHold`).
public struct ElectionCore: Sendable {
    public enum Action: Sendable, Hashable {
        /// Run one round on the store and feed back `roundSucceeded` or `roundFailed`.
        case round(RoundRequest)
        /// Give leadership with this epoch up in the store, reserving it for a target if given.
        /// Always comes after the status stopped saying leader.
        case release(Epoch, handOverTo: String?)
        /// Stop standing in the store (unhealthy): ZooKeeper deletes its node; a lease records it in its rounds.
        case withdraw
        /// As leader, clear the switchover target (reached, or no longer standing).
        case clearTarget
        /// Ask the leader (through the store) to hand over to this candidate.
        case requestSwitchover(String)
        /// Something worth a log line; each is reported once per change.
        case report(Report)
        /// Stop standing for good: the shell's `run()` throws this.
        case fail(CoordinationError)
    }

    public enum Report: Sendable, Hashable {
        case leading(Epoch)
        case steppedDown(Epoch, reason: String)
        case unhealthy(String)
        case healthy
        case storeProblem(String)
        case storeRecovered
        case duplicateSeen
        /// The store offered an epoch below one already seen: it was tampered with or rolled back.
        case epochWentBack(offered: Epoch, seen: Epoch)
        /// The work of a leadership given up did not stop within the bound: released all the same.
        case workStopOverdue
    }

    public let me: String
    public let timing: ElectionTiming
    /// What to publish; changes only inside the core's transitions.
    public private(set) var status = ElectionStatus.initial
    public private(set) var leading: (epoch: Epoch, validUntil: Moment)?
    /// The highest epoch any round showed: this candidate never takes one at or below it.
    public private(set) var highestSeen = Epoch.zero
    /// nil until the first verdict: a candidate stands only once it is known to be healthy.
    private var healthy: Bool?
    private var roundSentAt: Moment?
    private var lostAt: Moment?
    private var standAsideUntil: Moment?
    /// When leadership was last given up by choice: a round sent before then cannot restore it.
    private var resignedAt: Moment?
    private var handingOverTo: String?
    private var duplicateSince: Moment?
    private var storeProblem: String?
    private var lastView: ElectionView?
    /// When the round that showed `lastView` was sent.
    private var lastViewSentAt: Moment?
    private var finished = false
    private var policy: PreferredMasterPolicy
    private var hold = ReleaseHold()
    /// The epoch this candidate led with last: released once more when it stops (see `stop`), and
    /// once that leadership ended, never led with again (see `roundSucceeded`).
    private var lastLed: Epoch?

    public init(me: String, timing: ElectionTiming) {
        self.me = me
        self.timing = timing
        self.policy = PreferredMasterPolicy(holdDown: timing.holdDown)
    }

    public var isLeader: Bool { leading != nil }

    /// Whether this candidate stands for leadership: healthy, and no work of a term it no longer
    /// leads still running. A process whose last term's stop hangs cannot begin a new term, so
    /// taking leadership (a lapsed reservation, a switchover back to it) would leave the shard
    /// with a leader that never serves; it stands again once the work stopped.
    private var isStanding: Bool {
        healthy == true && (leading != nil || !hold.isWorking)
    }

    /// Leadership given up of its own accord is held in the store until the work stops (`ReleaseHold`).
    public var isHoldingRelease: Bool { hold.isHolding }

    /// Every interval: steps down if leadership may have lapsed, and starts a round unless one is
    /// in flight.
    public mutating func tick(now: Moment) -> [Action] {
        guard !finished else { return [] }
        var actions = expire(now: now) + released(hold.expire(now: now), now: now)
        // None while a release is held: a round would renew, or take back, what is being given up.
        if roundSentAt == nil, !hold.isHolding {
            roundSentAt = now
            let aside = standAsideUntil.map { now < $0 } ?? false
            actions.append(.round(RoundRequest(healthy: isStanding, mayAcquire: isStanding && duplicateSince == nil,
                                               standingAside: aside, highestSeen: highestSeen, leadingWith: leading?.epoch)))
        }
        return actions
    }

    /// The health checks' verdict (nil: healthy). An unhealthy leader resigns at once; an
    /// unhealthy candidate stops standing.
    public mutating func health(problem: String?, now: Moment) -> [Action] {
        guard !finished, (problem == nil) != healthy else { return [] }
        healthy = problem == nil
        defer { publish() }
        guard let problem else { return [.report(.healthy)] }
        let resigned = leading != nil ? resign(now: now, reason: "unhealthy: \(problem)") : []
        return resigned + hold.alongside([.withdraw]) + [.report(.unhealthy(problem))]
    }

    /// The round sent at the last `.round` came back showing `view`.
    public mutating func roundSucceeded(_ view: ElectionView, now: Moment) -> [Action] {
        guard let sentAt = roundSentAt, !finished else { return [] }
        roundSentAt = nil
        var actions: [Action] = []
        if storeProblem != nil {
            storeProblem = nil
            actions.append(.report(.storeRecovered))
        }
        // An answer sent before the connection was lost says nothing about the session now.
        if let lostAt, sentAt < lostAt { return actions }
        lastView = view
        lastViewSentAt = sentAt
        let previouslySeen = highestSeen
        highestSeen = max(highestSeen, view.epoch)
        if view.duplicate {
            if duplicateSince == nil { actions.append(.report(.duplicateSeen)) }
            duplicateSince = duplicateSince ?? now
            // Only a round that still shows the other process gives up: rounds that failed
            // meanwhile (a flaky store just after a restart, while the previous instance's
            // session or row lingers) say nothing about whether it has gone.
            if now - duplicateSince! >= timing.duplicateGrace { return actions + fail(.duplicateCandidate(me)) }
        } else {
            duplicateSince = nil
        }
        defer { publish() }
        guard view.holder == me, !view.duplicate else {
            return actions + loseLeadership(reason: "leadership held by \(view.holder ?? "nobody")")
        }
        if view.epoch < previouslySeen {
            // Never lead with an epoch that fencing would refuse or, worse, accept twice.
            actions += loseLeadership(reason: "epoch went back")
            return actions + [.report(.epochWentBack(offered: view.epoch, seen: previouslySeen)), .release(view.epoch, handOverTo: nil)]
        }
        if !isStanding || (resignedAt.map { sentAt <= $0 } ?? false) {
            // A round sent before we resigned took or kept leadership: give it straight back.
            return actions + loseLeadership(reason: "standing aside")
                + hold.alongside([.release(view.epoch, handOverTo: handingOverTo)])
        }
        if let current = leading, current.epoch != view.epoch {
            actions += loseLeadership(reason: "epoch changed to \(view.epoch)")
        }
        if leading == nil, let lastLed, view.epoch <= lastLed {
            // A round sent before this candidate stepped down renewed the term that ended. A term
            // is not resumed: the next round (not leading) takes leadership under a new epoch, so
            // fencing can refuse any late write of the old term.
            return actions
        }
        let validUntil = sentAt + timing.validity
        guard validUntil > now else {
            // The answer came too late to be sure nobody else could lead by now.
            return actions + loseLeadership(reason: "confirmation answered too late")
        }
        if leading == nil {
            actions.append(.report(.leading(view.epoch)))
            policy.reset()
        }
        leading = (view.epoch, validUntil)
        lastLed = view.epoch
        standAsideUntil = nil
        handingOverTo = nil
        return actions + leaderDuties(view, now: now)
    }

    /// The round in flight failed. A leader keeps acting only until its last confirmation lapses.
    public mutating func roundFailed(problem: String, now: Moment) -> [Action] {
        guard roundSentAt != nil, !finished else { return [] }
        roundSentAt = nil
        var actions = expire(now: now)
        if problem != storeProblem {
            storeProblem = problem
            actions.append(.report(.storeProblem(problem)))
        }
        return actions
    }

    /// The connection to the store was lost (ZooKeeper: suspended or expired): stop acting now.
    /// Answers to rounds sent before this moment are ignored, and the round in flight, if any, is
    /// abandoned: the next `tick` starts one. A shell may never report the abandoned round (its
    /// request failed with the session), and waiting for that report would stop the candidate
    /// standing for good.
    public mutating func connectionLost(reason: String, now: Moment) -> [Action] {
        lostAt = now
        roundSentAt = nil
        defer { publish() }
        return loseLeadership(reason: reason)
    }

    /// Steps down if leadership may have lapsed. Call it on a timer of its own too.
    public mutating func checkExpiry(now: Moment) -> [Action] { expire(now: now) }

    /// Give leadership up (if held) and stand aside for `standAside`, so another candidate leads.
    public mutating func resign(now: Moment, reason: String = "resigned") -> [Action] {
        standAsideUntil = now + timing.standAside
        resignedAt = now
        handingOverTo = nil
        policy.reset()
        guard let current = leading else { return [] }
        defer { publish() }
        return loseLeadership(reason: reason) + hold.giveUp([.release(current.epoch, handOverTo: nil)], now: now, bound: timing.validity)
    }

    /// Move leadership to `id`. As leader, if the last round showed `id` standing: step down and
    /// release leadership reserved for it. Otherwise ask through the store, where the leader's next
    /// round hands over, or drops the request if `id` is not standing.
    public mutating func handOver(to id: String, now: Moment, reason: String? = nil) -> [Action] {
        guard id != me else { return [] }
        guard let current = leading, lastView?.standing.contains(id) == true else { return [.requestSwitchover(id)] }
        // No stand-aside: the store reserves leadership for the target while it is alive, and
        // lets anyone, this candidate included, take it once the target stopped answering.
        standAsideUntil = nil
        resignedAt = now
        handingOverTo = id
        policy.reset()
        defer { publish() }
        return loseLeadership(reason: reason ?? "handing over to \(id)")
            + hold.giveUp([.release(current.epoch, handOverTo: id)], now: now, bound: timing.validity)
    }

    /// The owner starts work under leadership with `epoch` (a node's flow engine): from now on,
    /// giving leadership up of its own accord waits for `workStopped` (`ReleaseHold`). Returns
    /// false, and holds nothing, when this candidate no longer leads with `epoch`: it gave
    /// leadership up (and released it) in the moment since its owner decided to start, so the
    /// owner must not start, or a successor could claim while that work runs.
    public mutating func workStarted(_ epoch: Epoch) -> Bool {
        guard leading?.epoch == epoch else { return false }
        hold.workStarted()
        return true
    }

    /// The owner's work stopped (its last write made): a release held for it is done now.
    public mutating func workStopped(now: Moment) -> [Action] {
        defer { publish() }  // it stands again
        return released(hold.workStopped(), now: now)
    }

    /// Stop standing (shutdown): step down and release what is held. The last epoch led is
    /// released even if it was given up before: that release may have been lost with the shell's
    /// cancelled task (a graceful stop lets go of a held release just before it stops), and a
    /// release changes nothing once the store no longer holds that epoch for this candidate.
    public mutating func stop() -> [Action] {
        guard !finished else { return [] }
        var actions = loseLeadership(reason: "stopping") + hold.letGo()
        finished = true
        publish()
        if let lastLed, !actions.contains(where: { if case .release(lastLed, _) = $0 { true } else { false } }) {
            actions.append(.release(lastLed, handOverTo: nil))
        }
        return actions
    }

    // MARK: Rules

    /// A leader's checks after every confirmation: switchover, then the preferred master.
    private mutating func leaderDuties(_ view: ElectionView, now: Moment) -> [Action] {
        if let target = view.target {
            if target != me, view.standing.contains(target) {
                return handOver(to: target, now: now, reason: "switchover to \(target)")
            }
            return [.clearTarget]  // reached, or its target is not standing: dropped
        }
        if let preferred = policy.observe(now: now, me: me, preferred: view.preferred,
                                          preferredStanding: view.preferred.map(view.standing.contains) ?? false,
                                          incarnation: view.preferred.flatMap { view.incarnations[$0] }) {
            return handOver(to: preferred, now: now, reason: "preferred master \(preferred) is back")
        }
        return []
    }

    /// Held store work, done now. A resignation's stand-aside counts from here, so that this
    /// candidate does not take back at once what it has only just released.
    private mutating func released(_ actions: [Action], now: Moment) -> [Action] {
        if !actions.isEmpty, standAsideUntil != nil { standAsideUntil = now + timing.standAside }
        return actions
    }

    private mutating func fail(_ error: CoordinationError) -> [Action] {
        let actions = stop()
        return actions + [.fail(error)]
    }

    private mutating func expire(now: Moment) -> [Action] {
        // A view as old as a leadership's validity says nothing about who leads now: name nobody
        // (hot-hot processes named each other as active through a database outage, and clients
        // that followed them went back and forth).
        if let sentAt = lastViewSentAt, now >= sentAt + timing.validity {
            lastView = nil
            lastViewSentAt = nil
            publish()
        }
        guard let current = leading, now >= current.validUntil else { return [] }
        defer { publish() }
        return loseLeadership(reason: "leadership not confirmed in time")
    }

    private mutating func loseLeadership(reason: String) -> [Action] {
        guard let current = leading else { return [] }
        leading = nil
        policy.reset()
        publish()
        return [.report(.steppedDown(current.epoch, reason: reason))]
    }

    /// The status follows from the state alone, so it can never disagree with a transition.
    private mutating func publish() {
        assert(leading == nil || (healthy == true && duplicateSince == nil && !finished),
               "Invalid state: leading while unhealthy, a duplicate or stopped")
        let seen = lastView?.holder == me ? nil : lastView?.holder
        if finished {
            status = ElectionStatus(role: .notStanding, leader: nil)
        } else if let leading {
            status = ElectionStatus(role: .leader(leading.epoch), leader: me)
        } else if !isStanding || duplicateSince != nil {
            status = ElectionStatus(role: .notStanding, leader: seen)
        } else {
            status = ElectionStatus(role: .follower, leader: seen)
        }
    }
}
