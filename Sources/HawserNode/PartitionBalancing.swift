import Coordination
import Logging
import ServiceLifecycle

/// A hot-hot node's balancer (`PartitionBalancer`): while this process leads partition 0, it
/// spreads the partitions over the processes standing in every one of them, a pass each election
/// round. It stops before the partitions' stands do, which close the administrations it uses.
struct PartitionBalancing: Service {
    let stands: [ShardStand]
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let balancer = PartitionBalancer(partitions: stands.map(\.administration))
        let first = stands[0].election
        await cancelWhenGracefulShutdown {
            await balancer.run(every: interval, isLeading: { first.status.role.epoch != nil }, logger: logger) { moved in
                logger.info("partitions balanced", metadata: ["moved": "\(moved.sorted { $0.key < $1.key }.map { "p\($0.key)→\($0.value)" })"])
            }
        }
    }
}
