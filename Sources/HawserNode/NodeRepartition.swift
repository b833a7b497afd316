import Coordination
import Foundation
import Logging

/// Changes the partition count a hot-hot node's database records (`hawser node repartition`). The
/// count says which partition owns each flow, so every process must use the one recorded: a
/// process whose `ha.partitions` differs refuses to start. With every process stopped, the flows
/// may be split anew: no flow runs, and each is resumed by its new partition's owner.
public enum NodeRepartition {
    /// Records `configuration`'s `ha.partitions` in its node database, after checking that no
    /// process stands in, or leads, any partition election of the old count or the new. Returns
    /// what it did, in a sentence.
    public static func apply(configuration: NodeConfiguration, baseDirectory: String, logger: Logger) async throws -> String {
        guard let map = configuration.ha.flowPartitions, let election = configuration.ha.election?.resolved(against: baseDirectory) else {
            throw ConfigurationError(["ha.mode is \(configuration.ha.mode.rawValue): only a hot-hot node's flows are partitioned"])
        }
        return try await NodeDatabase.offline(configuration, baseDirectory: baseDirectory, logger: logger) { database in
            // The elections checked below must be those the node's processes stand in.
            let identity = election.identity
            if let named = try await database.flows.setting("election", proposing: identity), named != identity {
                throw ConfigurationError(["ha.election names the election \(identity), but the node's processes stand in \(named): "
                                          + "name theirs, so that it can be checked that none of them runs"])
            }
            let recorded = Int(try await database.flows.setting("partitions", proposing: "\(map.count)") ?? "") ?? map.count
            for partition in 0..<max(recorded, map.count) {
                let settings = election.partition(partition)
                let snapshot = try await settings.snapshot()
                if let running = snapshot.leader ?? snapshot.candidates.first?.id {
                    throw ConfigurationError(["\(running) still stands in the election of partition \(partition) (\(settings.election)): "
                                              + "stop every process of the node first (a killed one stands until its lease or session runs out)"])
                }
            }
            try await database.flows.setSetting("partitions", to: "\(map.count)")
            return "the node database splits its flows into \(map.count) partitions (it split them into \(recorded))"
        }
    }
}
