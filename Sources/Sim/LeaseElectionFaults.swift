import Coordination

/// The faults of a `LeaseElectionWorld` and its network's delays.
extension LeaseElectionWorld {
    /// True nanoseconds until the next fault: uniform, up to twice the mean gap.
    mutating func gap() -> Int64 {
        Int64.random(in: 1...settings.faults.meanGap.nanosecondsValue * 2, using: &random)
    }

    /// A message's travel time: usually well under a millisecond to 20 ms; sometimes (until the
    /// quiet period) longer than the request time-out, so its sender gave up on it before it
    /// arrives.
    mutating func delay(_ index: Int) -> Int64 {
        if !quiet, Double.random(in: 0..<1, using: &random) < settings.faults.slow {
            disturb(index)
            let timeout = Double(configuration.requestTimeout.nanosecondsValue)
            return Int64(timeout * Double.random(in: 0.5...2, using: &random))
        }
        return Int64.random(in: 200_000...20_000_000, using: &random)
    }

    /// Whether a message to or from `index` is lost now.
    mutating func lost(_ index: Int) -> Bool {
        if shells[index].cutOffUntil > now { return true }
        guard !quiet, Double.random(in: 0..<1, using: &random) < settings.faults.loss else { return false }
        disturb(index)
        return true
    }

    /// Counts a pause, cut-off or slow or lost message of `index` (see `ShardProcess.disturbances`).
    mutating func disturb(_ index: Int) {
        if node != nil { processes[index].disturbances += 1 }
    }

    mutating func inject(_ fault: SimFault) {
        let index = Int.random(in: shells.indices, using: &random)
        let id = shells[index].id
        let longest = settings.faults.longest.nanosecondsValue
        let spell = Int64.random(in: 50_000_000...longest, using: &random)
        guard shells[index].alive, shells[index].pausedUntil <= now else { return }
        faults += 1
        let moment = shells[index].clock.moment(at: now)
        switch fault {
        case .pause:
            shells[index].pausedUntil = now + spell
            disturb(index)
            record("fault: \(id) paused for \(spell / 1_000_000) ms")
        case .crash:
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
            disturb(index)
            record("fault: \(id) cut off from the store for \(spell / 1_000_000) ms")
        case .resign:
            record("operator: \(id) resigns")
            wake(index, transition(index) { $0.resign(now: moment) })
        case .handOver:
            let target = shells[(index + Int.random(in: 1..<shells.count, using: &random)) % shells.count].id
            record("operator: \(id) hands over to \(target)")
            wake(index, transition(index) { $0.handOver(to: target, now: moment) })
        case .adminSwitchover:
            record("operator: switchover to \(id): \(store.setTarget(id, nowNs: now))")
        case .adminPreferred:
            let preferred = Bool.random(using: &random) ? id : nil
            record("operator: prefer \(preferred ?? "nobody"): \(store.setPreferred(preferred, nowNs: now))")
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

    /// A call on a candidate from outside its round loop (an operator's `resign` or `handOver`, the
    /// shard's `workStopped`): its store work, if any, is queued, and the round loop wakes at once
    /// unless a call is in flight.
    mutating func wake(_ index: Int, _ actions: [ElectionCore.Action]) {
        guard !actions.isEmpty else { return }
        shells[index].work += actions
        if shells[index].inFlight == nil, !shells[index].gaveUp { schedule(turnOf: index, at: now) }
    }
}
