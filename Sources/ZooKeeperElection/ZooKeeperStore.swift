import Coordination
import Foundation
import ZooKeeper

/// The election's requests on one ZooKeeper session: the I/O the `ElectionCore` actions ask
/// for. Holds no decision of its own beyond the queue mechanics (create, claim, move to the back).
struct ZooKeeperStore: Sendable {
    let client: ZooKeeperClient
    let configuration: ZooKeeperElectionConfiguration
    let candidate: Candidate

    /// This session's candidate node and the watch on its predecessor.
    struct Place: Sendable {
        var node: String?
        /// Kept across rounds: watches are one-shot and an armed one stays registered, so setting
        /// a new one every round would pile them up.
        var watching: (node: String, watch: ZooKeeperWatch)?
    }

    /// One round: stand (create our node unless another process stands with our id), read the
    /// queue and the settings, and claim the next epoch if our node is first and the takeover
    /// rule lets us; if it does not (a switchover target waits behind us), go to the back.
    func round(_ request: RoundRequest, _ place: inout Place) async throws -> ElectionView {
        let children = try await call { try await client.getChildren(configuration.candidatesPath).children }
        var queue = ElectionRules.queue(children)
        if let node = place.node, !queue.contains(where: { $0.name == node }) {
            place = Place()  // deleted under us (or lost with a session): stand again
        }
        var duplicate = false
        if request.healthy {
            duplicate = try await standAlone(&queue, &place)
        } else if let node = place.node {
            try await delete(node)  // an unhealthy candidate does not stand (its withdrawal failed)
            queue.removeAll { $0.name == node }
            place = Place()
        }
        let (data, stat) = try await call { try await client.getData(configuration.epochPath) }
        let record = EpochRecord.decode(data)
        let target = try await readString(configuration.switchoverPath)
        let preferred = try await readString(configuration.preferredPath)
        let standing = Set(queue.map(\.id))
        var holder = ElectionRules.leader(queue: queue, record: record)
        var epoch = record == nil ? Epoch.zero : EpochRecord.epoch(mzxid: stat.mzxid)
        // Claimed again (a new epoch) if the record names us but we do not lead with it: we
        // stepped down meanwhile (see `RoundRequest.leadingWith`).
        if let mine = place.node, queue.first?.name == mine, holder != candidate.id || request.leadingWith != epoch {
            let reserved = target.map(standing.contains) ?? false
            if TakeoverRule.mayTake(me: candidate.id, request: request, target: target, targetReserved: reserved) {
                if let claimed = try await claim(node: mine, version: stat.version, &place) {
                    (holder, epoch) = (candidate.id, claimed)
                }
            } else if queue.count > 1 {
                try await requeue(&place)
                queue = ElectionRules.queue(try await call { try await client.getChildren(configuration.candidatesPath).children })
            }
        }
        try await watchPredecessor(queue, &place)
        return ElectionView(holder: holder, epoch: epoch, preferred: preferred, target: target, standing: standing, duplicate: duplicate)
    }

    /// Makes sure we stand with one node, unless another session stands with our id first.
    /// Returns whether another process does (a duplicate).
    private func standAlone(_ queue: inout [ElectionRules.Node], _ place: inout Place) async throws -> Bool {
        var foreign: [ElectionRules.Node] = []
        for node in queue where node.id == candidate.id && node.name != place.node {
            guard let stat = try await call({ try await client.exists("\(configuration.candidatesPath)/\(node.name)") }) else { continue }
            if stat.ephemeralOwner != client.sessionID {
                foreign.append(node)
            } else if place.node == nil {
                place.node = node.name  // created by us, but the reply was lost with the connection
            } else {
                try await delete(node.name)
                queue.removeAll { $0.name == node.name }
            }
        }
        if let mine = place.node, let first = foreign.first, let own = queue.first(where: { $0.name == mine }), first.sequence < own.sequence {
            try await delete(mine)  // the other process came first: it keeps its place
            queue.removeAll { $0.name == mine }
            place = Place()
        }
        guard place.node == nil else { return false }
        guard foreign.isEmpty else { return true }
        let created = try await createNode()
        place.node = created
        if let node = ElectionRules.parse(created) { queue.append(node) }
        return false
    }

    /// Writes the epoch record with the epoch node's version, atomically with checking that our
    /// node exists: two claims cannot both succeed, and a candidate that lost its place gets
    /// nothing. The epoch is the transaction's id (`mzxid`).
    private func claim(node: String, version: Int32, _ place: inout Place) async throws -> Epoch? {
        let record = EpochRecord(leader: candidate.id, node: node)
        do {
            let results = try await call {
                try await client.multi([
                    .check(path: "\(configuration.candidatesPath)/\(node)", version: -1),
                    .setData(path: configuration.epochPath, data: record.bytes, version: version),
                ])
            }
            guard results.count == 2, case .setData(let stat) = results[1] else { return nil }
            return EpochRecord.epoch(mzxid: stat.mzxid)
        } catch ZooKeeperError.multiFailed(let index, _, _) {
            if index == 0 { place = Place() }  // our node is gone: stand again
            return nil  // or another claim won the race
        }
    }

    /// Leadership given up: reserve it for `handOverTo` (the switchover node), then go to the back.
    func release(handOverTo: String?, _ place: inout Place) async throws {
        if let handOverTo { try await setString(configuration.switchoverPath, handOverTo) }
        try await requeue(&place)
    }

    /// Deletes our node (unhealthy candidates do not stand).
    func withdraw(_ place: inout Place) async throws {
        if let node = place.node { try await delete(node) }
        place = Place()
    }

    func setString(_ path: String, _ value: String?) async throws {
        try await call { _ = try await client.setData(path, data: Array((value ?? "").utf8)) }
    }

    /// Waits for the predecessor's watch, a lost connection, `wakeup` (work queued), or
    /// `checkInterval`, whichever is first.
    func wait(_ place: Place, wakeup: Wakeup) async -> ZooKeeperConnectionState? {
        await withTaskGroup(of: ZooKeeperConnectionState?.self) { group in
            group.addTask {
                await wakeup.wait()
                return nil
            }
            group.addTask {
                for await state in client.states() where state != .connected && state != .reconnected { return state }
                return nil
            }
            group.addTask { [interval = configuration.checkInterval] in
                try? await Task.sleep(for: interval)
                return nil
            }
            if let watch = place.watching?.watch {
                group.addTask {
                    _ = try? await watch.event()
                    return nil
                }
            }
            defer { group.cancelAll() }
            return await group.next() ?? nil
        }
    }

    // MARK: Requests

    private func requeue(_ place: inout Place) async throws {
        if let node = place.node { try await delete(node) }
        place = Place(node: try await createNode())
    }

    private func watchPredecessor(_ queue: [ElectionRules.Node], _ place: inout Place) async throws {
        guard let mine = place.node, let predecessor = ElectionRules.predecessor(of: mine, in: queue) else {
            place.watching = nil
            return
        }
        if place.watching?.node == predecessor.name { return }
        let (stat, watch) = try await call { try await client.existsAndWatch("\(configuration.candidatesPath)/\(predecessor.name)") }
        place.watching = stat == nil ? nil : (predecessor.name, watch)
    }

    /// Creates our ephemeral-sequential node, readable and writable only with the election's
    /// credentials. After a connection loss during the create, the node may exist without our
    /// knowing its name: the next round adopts the one our session owns.
    private func createNode() async throws -> String {
        let data = Array((try? JSONEncoder().encode(candidate)) ?? Data())
        let prefix = "\(configuration.candidatesPath)/\(ElectionRules.nodePrefix(for: candidate.id))"
        let path = try await call { try await client.create(prefix, data: data, acl: configuration.credentials.acl, mode: .ephemeralSequential) }
        return String(path.split(separator: "/").last!)
    }

    private func delete(_ node: String) async throws {
        do {
            try await call { try await client.delete("\(configuration.candidatesPath)/\(node)") }
        } catch ZooKeeperError.noNode {
        }
    }

    func readString(_ path: String) async throws -> String? {
        let data = try await call { try await client.getData(path).data }
        return data.isEmpty ? nil : String(decoding: data, as: UTF8.self)
    }

    /// One ZooKeeper request, bounded by `requestTimeout`.
    private func call<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withDeadline(configuration.requestTimeout, "a ZooKeeper request", body)
    }
}
