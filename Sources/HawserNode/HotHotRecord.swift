import Flows
import Foundation
import Postgres

/// What a node database records of the hot-hot node that uses it (`node_settings`: `partitions`
/// and `election`), checked by every process at start-up. The flows' split decides which process
/// runs each flow, so every process of a hot-hot node must split them alike and stand in the same
/// elections: two processes that split them differently, or stand in different elections (whose
/// epochs can meet), could run one partition's flows at once. And a process of another mode on
/// the database of a hot-hot node would run the workers' flows beside them.
enum HotHotRecord {
    /// Records this hot-hot process's split and election if the database has none, and refuses
    /// a process whose configuration differs from what is recorded (`ConfigurationError`).
    static func check(_ ha: HAConfiguration, baseDirectory: String, store: any NodeFlowStore) async throws {
        guard let map = ha.flowPartitions, let election = ha.election?.resolved(against: baseDirectory) else {
            if let recorded = try await store.setting("partitions", proposing: nil) {
                throw ConfigurationError(["the node database is a hot-hot node's (its flows split into \(recorded) partitions): a process of "
                                          + "ha.mode \(ha.mode.rawValue) would run the flows its workers run; use ha.mode hot-hot "
                                          + "(docs/node.md, \"Hot-hot\" says how a node leaves hot-hot)"])
            }
            return
        }
        var problems: [String] = []
        let partitions = try await store.setting("partitions", proposing: "\(map.count)")
        if partitions != "\(map.count)" {
            problems.append("ha.partitions is \(map.count), but the node database splits its flows into \(partitions ?? "?") partitions: "
                            + "every process of a node must use the count recorded (to change it, stop every process and run "
                            + "`hawser node repartition` with the new count)")
        }
        let identity = election.identity
        let recorded = try await store.setting("election", proposing: identity)
        if recorded != identity {
            problems.append("ha.election names the election \(identity), but the node's other processes stand in \(recorded ?? "?"): "
                            + "every process of a hot-hot node must stand in the same elections (their epochs decide who runs each partition)")
        }
        if !problems.isEmpty { throw ConfigurationError(problems) }
    }
}

extension ElectionSettings {
    /// Where the election lives and its name, without credentials: the same for every process
    /// that stands in it. The form is `zookeeper HOSTS NAME` (the servers sorted), `postgres
    /// HOST:PORT/DATABASE NAME` or `sqlite PATH NAME` (the path absolute).
    var identity: String {
        if let zookeeper {
            return "zookeeper \(zookeeper.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.sorted().joined(separator: ",")) \(election)"
        }
        if let postgres {
            // Parsed as the lease parses it (a validated configuration's URL parses).
            let url = try? PostgresURL.configuration(postgres)
            return "postgres \(url?.host ?? ""):\(url?.port ?? 5432)/\(url?.database ?? "") \(election)"
        }
        return "sqlite \(URL(fileURLWithPath: sqlite ?? "").standardizedFileURL.path) \(election)"
    }
}
