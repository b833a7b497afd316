import Coordination
import Flows
import Foundation
import HawserCore
import Logging

/// What `hawser node status --config node.json` shows of a running hot-hot node (docs/node.md,
/// "Hot-hot"): each partition's election (its leader, the epoch it leads under, its preferred
/// master) and its lag, read from the node database: how many of its flows have not ended, and
/// how long the oldest of them has waited since its last write; the workers, each with the
/// partitions it leads; and, for a member of a network, the outbox's election (who delivers the
/// outbox). It reads only: the node's processes run on meanwhile.
public struct HotHotStatus: Encodable, Sendable {
    public var partitions: Int
    public var election: String
    public var workers: [Worker]
    public var partition: [Partition]
    /// The election `<election>.outbox` (nil outside a network).
    public var outbox: Outbox?

    public struct Outbox: Encodable, Sendable {
        public var leader: String?
        public var epoch: UInt64?
        public var preferred: String?
    }

    public struct Worker: Encodable, Sendable {
        public var id: String
        public var addresses: [String]
        public var leads: [Int]
    }

    public struct Partition: Encodable, Sendable {
        public var partition: Int
        public var leader: String?
        public var epoch: UInt64?
        public var preferred: String?
        /// Flows of the partition that have not ended (running or in the hospital).
        public var unfinished: Int
        public var hospitalised: Int
        /// Milliseconds since the last write of its unfinished flow written longest ago (nil: none).
        public var oldestWaitMs: Int64?
    }

    /// Flows read in one query while counting (a large backlog takes several).
    static let page = 1_000

    /// Reads the status of the node `configuration` describes (a hot-hot node's).
    public static func read(configuration: NodeConfiguration, baseDirectory: String, logger: Logger) async throws -> HotHotStatus {
        guard configuration.ha.mode == .hotHot, let election = configuration.ha.election?.resolved(against: baseDirectory) else {
            throw ConfigurationError(["ha.mode is \(configuration.ha.mode.rawValue): this shows a hot-hot node (for another's election, use hawser admin status)"])
        }
        let (count, flows) = try await NodeDatabase.reading(configuration, baseDirectory: baseDirectory, logger: logger) { database in
            guard let recorded = try await database.flows.setting("partitions", proposing: nil).flatMap(Int.init) else {
                throw ConfigurationError(["the node database records no hot-hot node: no process of it has started yet"])
            }
            var unfinished: [FlowRecord] = []
            var query = FlowQuery(limit: page)
            query.unfinished = true
            while true {
                let batch = try await database.flows.list(query)
                unfinished += batch
                guard batch.count == page, let last = batch.last else { break }
                query.after = last.id
            }
            return (recorded, unfinished)
        }
        let map = FlowPartitions(count: count)
        let now = SystemFlowClock().now()
        var partitions = (0..<count).map { Partition(partition: $0, unfinished: 0, hospitalised: 0) }
        for flow in flows {
            let k = map.partition(of: flow.id)
            partitions[k].unfinished += 1
            if flow.status == .hospitalised { partitions[k].hospitalised += 1 }
            let waited = (now.microsecondsSinceEpoch - flow.updatedAt.microsecondsSinceEpoch) / 1_000
            partitions[k].oldestWaitMs = max(partitions[k].oldestWaitMs ?? waited, waited)
        }
        var workers: [String: Worker] = [:]
        // One connection (or ZooKeeper session) for every election's read, as a process's elections
        // share, and the reads all at once: on a PostgreSQL lease they then share a transaction.
        let shared = try election.partitionConnections()
        let elections = (0..<count).map(election.partition) + (configuration.network == nil ? [] : [election.outbox])
        let snapshots: [ElectionSnapshot]
        do {
            snapshots = try await concurrently(elections.count) { k in try await elections[k].snapshot(sharing: shared) }
        } catch {
            await shared.close()
            throw error
        }
        await shared.close()
        for snapshot in snapshots {
            for candidate in snapshot.candidates where workers[candidate.id] == nil {
                workers[candidate.id] = Worker(id: candidate.id, addresses: candidate.addresses, leads: [])
            }
        }
        let outbox = snapshots.count > count ? snapshots[count] : nil
        for (k, snapshot) in snapshots.prefix(count).enumerated() {
            partitions[k].leader = snapshot.leader
            partitions[k].epoch = snapshot.leader == nil ? nil : snapshot.epoch.value
            partitions[k].preferred = snapshot.preferred
            if let leader = snapshot.leader { workers[leader, default: Worker(id: leader, addresses: [], leads: [])].leads.append(k) }
        }
        return HotHotStatus(partitions: count, election: election.identity, workers: workers.values.sorted { $0.id < $1.id },
                            partition: partitions,
                            outbox: outbox.map { Outbox(leader: $0.leader, epoch: $0.leader == nil ? nil : $0.epoch.value, preferred: $0.preferred) })
    }
}
