import Coordination
import ZooKeeperElection

/// How a `ZooKeeperElectionWorld` takes the faults of `ElectionWorld`: "cut off from the store"
/// is from the ensemble (its session may expire meanwhile), and a killed process's session lives
/// on until it expires.
extension ZooKeeperElectionWorld: ElectionWorld {
    var faultSettings: SimFaults { settings.faults }
    var requestTimeout: Duration { configuration.requestTimeout }
    var faulty: Duration { settings.faulty }
    var calm: Duration { settings.quiet }
    static var faultEvent: Event { .fault }
    static var quietEvent: Event { .quiet }

    mutating func disturb(_ index: Int) {}
    mutating func scheduleHeal(_ index: Int, _ fault: SimFault, at time: Int64) { queue.schedule(.heal(index, fault), at: time) }
    mutating func operatorSwitchover(to id: String) -> String { administer(.switchover, id) }
    mutating func operatorPrefer(_ id: String?) -> String { administer(.preferred, id) }


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
