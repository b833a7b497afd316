import Coordination

/// How a `LeaseElectionWorld` takes the faults of `ElectionWorld`.
extension LeaseElectionWorld: ElectionWorld {
    var faultSettings: SimFaults { settings.faults }
    var requestTimeout: Duration { configuration.requestTimeout }
    var faulty: Duration { settings.faulty }
    var calm: Duration { settings.quiet }
    static var faultEvent: Event { .fault }
    static var quietEvent: Event { .quiet }

    /// Counts a pause, cut-off or slow or lost message of `index` (see `ShardProcess.disturbances`).
    mutating func disturb(_ index: Int) {
        if node != nil { processes[index].disturbances += 1 }
    }

    mutating func scheduleHeal(_ index: Int, _ fault: SimFault, at time: Int64) { queue.schedule(.heal(index, fault), at: time) }
    mutating func operatorSwitchover(to id: String) -> String { "\(store.setTarget(id, nowNs: now))" }
    mutating func operatorPrefer(_ id: String?) -> String { "\(store.setPreferred(id, nowNs: now))" }


    /// A call on a candidate from outside its round loop (an operator's `resign` or `handOver`, the
    /// shard's `workStopped`): its store work, if any, is queued, and the round loop wakes at once
    /// unless a call is in flight.
    mutating func wake(_ index: Int, _ actions: [ElectionCore.Action]) {
        guard !actions.isEmpty else { return }
        shells[index].work += actions
        if shells[index].inFlight == nil, !shells[index].gaveUp { schedule(turnOf: index, at: now) }
    }
}
