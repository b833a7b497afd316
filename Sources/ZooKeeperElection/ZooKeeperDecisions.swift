import Coordination
import ZooKeeper

/// The election's decisions on ZooKeeper (stand once per id, adopt a node whose create reply was
/// lost, claim with a multi, move to the back, watch the predecessor) as straight-line code over
/// `Replies`: every request is `try replies.ask(...)`, so it does no I/O and `ZooKeeperProgram`
/// can replay it request by request.
struct ZooKeeperDecisions {
    let candidate: Candidate
    let session: Int64
    var replies: Replies

    typealias Place = ZooKeeperProgram.Place

    /// One round: stand (create our node unless another process stands with our id), read the
    /// queue and the settings, and claim the next epoch if our node is first and the takeover
    /// rule lets us; if it does not (a switchover target waits behind us), go to the back.
    mutating func round(_ request: RoundRequest, _ place: inout Place) throws -> ElectionView {
        var queue = ElectionRules.queue(try replies.children())
        if let node = place.node, !queue.contains(where: { $0.name == node }) {
            place = Place()  // deleted under us (or lost with a session): stand again
        }
        var duplicate = false
        if request.healthy {
            duplicate = try standAlone(&queue, &place)
        } else if let node = place.node {
            try delete(node)  // an unhealthy candidate does not stand (its withdrawal failed)
            queue.removeAll { $0.name == node }
            place = Place()
        }
        let epochNode = try replies.data(.readEpoch)
        let record = EpochRecord.decode(epochNode.data)
        let target = try readString(.switchover)
        let preferred = try readString(.preferred)
        let standing = Set(queue.map(\.id))
        var holder = ElectionRules.leader(queue: queue, record: record)
        var epoch = record == nil ? Epoch.zero : EpochRecord.epoch(mzxid: epochNode.mzxid)
        // Claimed again (a new epoch) if the record names us but we do not lead with it: we
        // stepped down meanwhile (see `RoundRequest.leadingWith`).
        if let mine = place.node, queue.first?.name == mine, holder != candidate.id || request.leadingWith != epoch {
            let reserved = target.map(standing.contains) ?? false
            if TakeoverRule.mayTake(me: candidate.id, request: request, target: target, targetReserved: reserved) {
                if let claimed = try claim(node: mine, version: epochNode.version, &place) {
                    (holder, epoch) = (candidate.id, claimed)
                }
            } else if queue.count > 1 {
                try requeue(&place)
                queue = ElectionRules.queue(try replies.children())
            }
        }
        try watchPredecessor(queue, &place)
        let incarnations = Dictionary(grouping: queue, by: \.id).mapValues { $0.map(\.name).sorted().joined(separator: ",") }
        return ElectionView(holder: holder, epoch: epoch, preferred: preferred, target: target, standing: standing,
                            incarnations: incarnations, duplicate: duplicate)
    }

    /// Leadership given up: reserve it for `handOverTo` (the switchover node), then go to the back.
    mutating func release(handOverTo: String?, _ place: inout Place) throws {
        if let handOverTo { try write(.switchover, handOverTo) }
        try requeue(&place)
    }

    /// Deletes our node (unhealthy candidates do not stand).
    mutating func withdraw(_ place: inout Place) throws {
        if let node = place.node { try delete(node) }
        place = Place()
    }

    mutating func write(_ setting: ZooKeeperSetting, _ value: String?) throws {
        try replies.done(.write(setting, value))
    }

    /// Makes sure we stand with one node, unless another session stands with our id first.
    /// Returns whether another process does (a duplicate).
    private mutating func standAlone(_ queue: inout [ElectionRules.Node], _ place: inout Place) throws -> Bool {
        var foreign: [ElectionRules.Node] = []
        for node in queue where node.id == candidate.id && node.name != place.node {
            guard let owner = try replies.owner(of: node.name) else { continue }
            if owner != session {
                foreign.append(node)
            } else if place.node == nil {
                place.node = node.name  // created by us, but the reply was lost with the connection
            } else {
                try delete(node.name)
                queue.removeAll { $0.name == node.name }
            }
        }
        if let mine = place.node, let first = foreign.first, let own = queue.first(where: { $0.name == mine }), first.sequence < own.sequence {
            try delete(mine)  // the other process came first: it keeps its place
            queue.removeAll { $0.name == mine }
            place = Place()
        }
        guard place.node == nil else { return false }
        guard foreign.isEmpty else { return true }
        place.node = try createNode()
        // Listed again: a node another candidate created after our listing but before ours has a
        // lower sequence and goes before us, and the first listing does not show it. Claiming on
        // that listing made two leaders at once (the ZooKeeper election's simulation, seed 25).
        queue = ElectionRules.queue(try replies.children())
        return false
    }

    /// Writes the epoch record with the epoch node's version, atomically with checking that our
    /// node exists: two claims cannot both succeed, and a candidate that lost its place gets
    /// nothing. The epoch is the transaction's id (`mzxid`).
    private mutating func claim(node: String, version: Int32, _ place: inout Place) throws -> Epoch? {
        let record = EpochRecord(leader: candidate.id, node: node)
        do {
            guard let mzxid = try replies.claimed(.claim(node: node, record: record, version: version)) else { return nil }
            return EpochRecord.epoch(mzxid: mzxid)
        } catch ZooKeeperError.multiFailed(let index, _, _) {
            if index == 0 { place = Place() }  // our node is gone: stand again
            return nil  // or another claim won the race
        }
    }

    private mutating func requeue(_ place: inout Place) throws {
        if let node = place.node { try delete(node) }
        place = Place(node: try createNode())
    }

    private mutating func watchPredecessor(_ queue: [ElectionRules.Node], _ place: inout Place) throws {
        guard let mine = place.node, let predecessor = ElectionRules.predecessor(of: mine, in: queue) else {
            place.watching = nil
            return
        }
        if place.watching == predecessor.name { return }
        let exists = try replies.owner(of: predecessor.name, watch: true) != nil
        place.watching = exists ? predecessor.name : nil
    }

    /// Creates our ephemeral-sequential node. After a connection loss during the create, the node
    /// may exist without our knowing its name: the next round adopts the one our session owns.
    private mutating func createNode() throws -> String {
        try replies.created(.create(prefix: ElectionRules.nodePrefix(for: candidate.id)))
    }

    private mutating func delete(_ node: String) throws {
        do {
            try replies.done(.delete(node: node))
        } catch ZooKeeperError.noNode {
        }
    }

    private mutating func readString(_ setting: ZooKeeperSetting) throws -> String? {
        let data = try replies.data(.read(setting)).data
        return data.isEmpty ? nil : String(decoding: data, as: UTF8.self)
    }
}
