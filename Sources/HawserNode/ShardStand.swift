import Coordination
import Foundation
import HawserCore
import Logging
import ServiceLifecycle

/// A hot-warm process's stand in the election for its shard, or a hot-hot one's for one partition (`ha` section), with a read of its
/// shared database as the health check: an active process that cannot reach its database is
/// unhealthy, so it resigns and another candidate takes over. Built once, here, for the node and
/// the notary.
struct ShardStand: Sendable {
    let election: any Election
    let administration: any ElectionAdministration
    /// How long one request to the database or the election may take.
    let timeout: Duration
    let logger: Logger

    init(election: any Election, administration: any ElectionAdministration, timeout: Duration, logger: Logger) {
        self.election = election
        self.administration = administration
        self.timeout = timeout
        self.logger = logger
    }

    /// Which of a process's elections a stand is in.
    enum Shard: Sendable {
        /// The node's or notary's one shard (hot-warm): `ha.election.election` itself.
        case whole
        /// A hot-hot partition: `<election>.p<k>`.
        case partition(Int)
        /// A hot-hot node's outbox, delivered by one of its processes with the p2p role: `<election>.outbox`.
        case outbox
    }

    /// `probe`: a cheap read of the shared database; its last verdict is kept in `serving` for
    /// `/health/ready`. `ha` must be a validated hot-warm or hot-hot section; `partition`: the
    /// hot-hot partition this stand is for, whose election is `<ha.election.election>.p<k>`;
    /// `sharing`: the connections of the process's partitions.
    init<Work>(_ ha: HAConfiguration, partition: Int? = nil, sharing shared: ElectionConnections? = nil, baseDirectory: String,
               serving: ServingState<Work>, logger: Logger, probe: @escaping @Sendable () async throws -> Void) throws {
        try self.init(ha, shard: partition.map(Shard.partition) ?? .whole, sharing: shared, baseDirectory: baseDirectory, logger: logger,
                      probe: probe) { serving.setHealthProblem($0) }
    }

    /// As above for any `shard`; the probe's last verdict goes to `report` (nil: healthy).
    init(_ ha: HAConfiguration, shard: Shard, sharing shared: ElectionConnections? = nil, baseDirectory: String, logger: Logger,
         probe: @escaping @Sendable () async throws -> Void, report: @escaping @Sendable (String?) -> Void) throws {
        guard let id = ha.id, let node = ha.election?.resolved(against: baseDirectory) else {
            preconditionFailure("a validated hot-warm or hot-hot configuration has ha.id and ha.election")
        }
        let (settings, name) = switch shard {
        case .whole: (node, HAConfiguration.shard)
        case .partition(let k): (node.partition(k), "p\(k)")
        case .outbox: (node.outbox, "outbox")
        }
        timeout = .milliseconds(settings.requestTimeoutMs)
        let health = HealthChecks([DatabaseHealthCheck(probe: probe, timeout: timeout, report: report)])
        var shardLogger = logger
        shardLogger[metadataKey: "shard"] = "\(name)"
        self.logger = shardLogger
        do {
            election = try settings.makeElection(candidate: Candidate(id: id, addresses: ha.advertise), health: health, logger: shardLogger,
                                                 sharing: shared)
            administration = try settings.makeAdministration(sharing: shared)
        } catch let error as CoordinationError {
            throw ConfigurationError(["ha.election: \(error)"])
        }
    }
}

/// The shared database answers a cheap read (`probe`) within `timeout`. The last verdict goes to
/// `report` (nil: healthy).
struct DatabaseHealthCheck: HealthCheck {
    let probe: @Sendable () async throws -> Void
    let timeout: Duration
    let report: @Sendable (String?) -> Void
    var name: String { "database" }

    func problem() async -> String? {
        let problem: String?
        do {
            try await withDeadline(timeout, "a read of the shared database") { [probe] in try await probe() }
            problem = nil
        } catch {
            problem = "\(error)"
        }
        report(problem.map { "\(name): \($0)" })
        return problem
    }
}

/// Closes the connections a process's partitions share (`ElectionConnections`) at shutdown:
/// listed before their stands and balancer, it stops after them.
struct ElectionConnectionsHold: Service {
    let connections: ElectionConnections

    func run() async throws {
        try? await gracefulShutdown()
        await connections.close()
    }
}
