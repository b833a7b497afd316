import Coordination
import ZooKeeperElection

/// The faults of a `ZooKeeperElectionWorld` and its network's delays: those of the lease
/// election's world, with "cut off from the store" meaning from the ZooKeeper ensemble (its
/// session may expire meanwhile).
extension ZooKeeperElectionWorld {
    /// True nanoseconds until the next fault: uniform, up to twice the mean gap.
    mutating func gap() -> Int64 {
        Int64.random(in: 1...settings.faults.meanGap.nanosecondsValue * 2, using: &random)
    }

    /// A message's travel time: usually well under a millisecond to 20 ms; sometimes (until the
    /// quiet period) longer than the request time-out, so its sender gave up on it before it
    /// arrives.
    mutating func delay(_ index: Int) -> Int64 {
        if !quiet, Double.random(in: 0..<1, using: &random) < settings.faults.slow {
            let timeout = Double(configuration.requestTimeout.nanosecondsValue)
            return Int64(timeout * Double.random(in: 0.5...2, using: &random))
        }
        return Int64.random(in: 200_000...20_000_000, using: &random)
    }

    /// Whether a message to or from `index` is lost now.
    mutating func lost(_ index: Int) -> Bool {
        if shells[index].cutOffUntil > now { return true }
        return !quiet && Double.random(in: 0..<1, using: &random) < settings.faults.loss
    }

    mutating func inject(_ fault: SimFault) {
        let index = Int.random(in: shells.indices, using: &random)
        let id = shells[index].id
        let spell = Int64.random(in: 50_000_000...settings.faults.longest.nanosecondsValue, using: &random)
        guard shells[index].alive, shells[index].pausedUntil <= now else { return }
        faults += 1
        let moment = shells[index].clock.moment(at: now)
        switch fault {
        case .pause:
            shells[index].pausedUntil = now + spell
            record("fault: \(id) paused for \(spell / 1_000_000) ms")
        case .crash:
            // Killed: its session lives on at the server until it expires.
            shells[index].alive = false
            shells[index].incarnation += 1
            record("fault: \(id) killed for \(spell / 1_000_000) ms")
            queue.schedule(.heal(index, .crash), at: now + spell)
        case .unhealthy:
            shells[index].healthy = false
            record("fault: \(id) unhealthy for \(spell / 1_000_000) ms")
            queue.schedule(.heal(index, .unhealthy), at: now + spell)
        case .partition:
            shells[index].cutOffUntil = now + spell
            record("fault: \(id) cut off from ZooKeeper for \(spell / 1_000_000) ms")
        case .resign:
            record("operator: \(id) resigns")
            wake(index, transition(index) { $0.resign(now: moment) })
        case .handOver:
            let target = shells[(index + Int.random(in: 1..<shells.count, using: &random)) % shells.count].id
            record("operator: \(id) hands over to \(target)")
            wake(index, transition(index) { $0.handOver(to: target, now: moment) })
        case .adminSwitchover:
            record("operator: switchover to \(id): \(administer(.switchover, id))")
        case .adminPreferred:
            let preferred = Bool.random(using: &random) ? id : nil
            record("operator: prefer \(preferred ?? "nobody"): \(administer(.preferred, preferred))")
        }
    }

    mutating func heal(_ index: Int, _ fault: SimFault) {
        switch fault {
        case .crash: start(index)
        case .unhealthy:
            shells[index].healthy = true
            record("\(shells[index].id) healthy again")
        default: break
        }
    }

    /// A call on a candidate from outside its round loop (an operator's `resign` or `handOver`):
    /// its work is queued, and the loop wakes at once unless a program is running.
    mutating func wake(_ index: Int, _ actions: [ElectionCore.Action]) {
        guard !actions.isEmpty else { return }
        shells[index].work += actions
        if shells[index].program == nil, shells[index].connected, !shells[index].gaveUp { schedule(turnOf: index, at: now) }
    }

    /// An operator's `hawser admin switchover` or `prefer` on a session of its own, as
    /// `ZooKeeperElectionAdministration` does it: the target must stand; a switchover to the
    /// leader is done already.
    mutating func administer(_ setting: ZooKeeperSetting, _ target: String?) -> String {
        let session = server.openSession(timeoutNs: sessionTimeout, nowNs: now)
        defer {
            server.end(session)
            deliverFired()
        }
        do {
            let queue = ElectionRules.queue(try server.getChildren(Self.candidatesPath, session: session))
            if let target, !queue.contains(where: { $0.id == target }) { return "refused: \(target) does not stand" }
            let record = EpochRecord.decode(try server.getData(Self.epochPath, session: session).data)
            if setting == .switchover, ElectionRules.leader(queue: queue, record: record) == target { return "already leads" }
            let path = setting == .switchover ? Self.switchoverPath : Self.preferredPath
            _ = try server.setData(path, data: Array((target ?? "").utf8), session: session)
            return "done"
        } catch {
            return "failed: \(error)"
        }
    }
}
