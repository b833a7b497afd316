import Flows
import Foundation
import Logging
import ServiceLifecycle

/// Kills or parks a flow in a node's database while the node is stopped: the way out when a flow
/// keeps the node from running (`hawser flow offline kill|park`). It writes what the node itself
/// writes (a killed flow releases its soft locks, a parked one waits for an operator) and clears
/// the flow's replay marker. A running node would go on running a flow killed under it, so the
/// tool takes the data directory's lock first and is refused while a node on this machine holds
/// it; a node on PostgreSQL that runs on another machine must be stopped by the operator.
public enum OfflineFlows {
    public enum Action: String, Sendable, CaseIterable {
        case kill, park
    }

    /// The flow after `action`, as the API shows it (JSON).
    public static func apply(_ action: Action, to id: String, configuration: NodeConfiguration, baseDirectory: String,
                             logger: Logger) async throws -> String {
        try await NodeDatabase.offline(configuration, baseDirectory: baseDirectory, logger: logger) { database in
            // An engine that runs no flow: it writes the operator's decision as the node would.
            let engine = FlowEngine(store: database.flows, registry: FlowRegistry(), services: FlowServices(),
                                    configuration: Node.engineConfiguration(configuration), logger: logger)
            let record: FlowRecord
            switch action {
            case .kill: record = try await engine.kill(FlowID(id))
            case .park: record = try await engine.park(FlowID(id), reason: "parked by an operator while the node was stopped")
            }
            return String(decoding: FlowResponse.bytes(record), as: UTF8.self)
        }
    }
}
