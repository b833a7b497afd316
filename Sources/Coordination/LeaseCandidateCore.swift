/// The decisions of one candidate in a lease election, without I/O (DESIGN.md rule 1).
///
/// The shell calls `tick` every renew interval and feeds back the outcome of each database round;
/// it performs the returned actions in order. Safety rests on two facts: the database grants a
/// lease only when the previous one has expired by its own clock, and a leader stops acting
/// `safetyMargin` before its lease could expire, counting from the moment it *sent* the round that
/// granted or renewed it (the database's clock read happens after that moment).
public struct LeaseCandidateCore: Sendable {
    public enum Action: Sendable, Hashable {
        /// Run one round on the database (`LeaseBackend.round`).
        case round(mayAcquire: Bool, healthy: Bool)
        /// Start acting as leader with this epoch.
        case becomeLeader(Epoch)
        /// Stop acting as leader at once (always comes before any `release`).
        case stepDown(Epoch, reason: String)
        /// Give the lease up on the database, optionally reserving it for a candidate.
        case release(Epoch, handOverTo: String?)
        /// The leader this candidate sees changed.
        case leaderChanged(String?)
    }

    public let me: String
    public let configuration: LeaseConfiguration
    public private(set) var leading: (epoch: Epoch, validUntil: Moment)?
    public private(set) var knownLeader: String?
    /// When the round in flight was sent; nil if none is.
    private var roundSentAt: Moment?
    private var standAsideUntil: Moment?
    /// Whom the last resignation handed over to (kept while standing aside).
    private var handingOverTo: String?
    private var healthy = false
    private var policy: PreferredMasterPolicy

    public init(me: String, configuration: LeaseConfiguration) {
        self.me = me
        self.configuration = configuration
        self.policy = PreferredMasterPolicy(holdDown: configuration.holdDown)
    }

    public var isLeader: Bool { leading != nil }

    /// Every renew interval. Steps down if the lease may have lapsed, and starts a round unless one
    /// is still in flight.
    public mutating func tick(now: Moment) -> [Action] {
        var actions = expire(now: now)
        if roundSentAt == nil {
            roundSentAt = now
            let asideOver = standAsideUntil.map { now >= $0 } ?? true
            actions.append(.round(mayAcquire: healthy && asideOver, healthy: healthy))
        }
        return actions
    }

    /// The health checks' verdict. An unhealthy leader resigns at once.
    public mutating func health(healthy: Bool, now: Moment) -> [Action] {
        self.healthy = healthy
        if !healthy, leading != nil { return resign(now: now, handOverTo: nil, reason: "unhealthy") }
        return []
    }

    /// The round sent at the last `.round` action came back with `observation`.
    public mutating func roundSucceeded(_ observation: LeaseObservation, now: Moment) -> [Action] {
        guard let sentAt = roundSentAt else { return [] }
        roundSentAt = nil
        var actions: [Action] = []
        if observation.holder != knownLeader {
            knownLeader = observation.holder
            actions.append(.leaderChanged(observation.holder))
        }
        if observation.holder == me, leading == nil, let until = standAsideUntil, now < until {
            // A round sent before we resigned renewed or took the lease: give it straight back.
            return actions + [.release(observation.epoch, handOverTo: handingOverTo)]
        }
        guard observation.holder == me else {
            if let current = leading {
                leading = nil
                policy.reset()
                actions.append(.stepDown(current.epoch, reason: "lease held by \(observation.holder ?? "nobody")"))
            }
            return actions
        }
        let validUntil = sentAt + (configuration.leaseDuration - configuration.safetyMargin)
        if let current = leading, current.epoch != observation.epoch {
            // Not possible while we held it without a break, but never act on two epochs.
            leading = nil
            actions.append(.stepDown(current.epoch, reason: "epoch changed to \(observation.epoch)"))
        }
        guard validUntil > now else {
            // The answer came too late to be sure nobody else could hold the lease by now.
            if let current = leading {
                leading = nil
                actions.append(.stepDown(current.epoch, reason: "renewal answered too late"))
            }
            return actions
        }
        if leading == nil {
            actions.append(.becomeLeader(observation.epoch))
        }
        leading = (observation.epoch, validUntil)
        if !healthy {
            return actions + resign(now: now, handOverTo: nil, reason: "unhealthy")
        }
        if let target = observation.target, target != me, observation.standing.contains(target) {
            return actions + resign(now: now, handOverTo: target, reason: "switchover to \(target)")
        }
        if let preferred = policy.observe(now: now, me: me, preferred: observation.preferred,
                                          preferredStanding: observation.preferred.map(observation.standing.contains) ?? false) {
            return actions + resign(now: now, handOverTo: preferred, reason: "preferred master \(preferred) is back")
        }
        return actions
    }

    /// The round in flight failed (database unreachable, timeout). A leader keeps acting only
    /// until its last lease could lapse.
    public mutating func roundFailed(now: Moment) -> [Action] {
        roundSentAt = nil
        return expire(now: now)
    }

    /// Give up leadership (if held) and stand aside, optionally handing over to `handOverTo`.
    public mutating func resign(now: Moment, handOverTo: String?, reason: String) -> [Action] {
        standAsideUntil = now + configuration.standAside
        handingOverTo = handOverTo
        policy.reset()
        guard let current = leading else { return [] }
        leading = nil
        return [.stepDown(current.epoch, reason: reason), .release(current.epoch, handOverTo: handOverTo)]
    }

    /// Stop now and release what is held (on shutdown).
    public mutating func stop() -> [Action] {
        healthy = false
        guard let current = leading else { return [] }
        leading = nil
        return [.stepDown(current.epoch, reason: "stopping"), .release(current.epoch, handOverTo: nil)]
    }

    /// Steps down if the lease may have lapsed. The shell calls this on its own timer too, so a
    /// round that hangs cannot keep a leader acting.
    public mutating func checkExpiry(now: Moment) -> [Action] { expire(now: now) }

    private mutating func expire(now: Moment) -> [Action] {
        guard let current = leading, now >= current.validUntil else { return [] }
        leading = nil
        policy.reset()
        return [.stepDown(current.epoch, reason: "lease not renewed in time")]
    }
}
