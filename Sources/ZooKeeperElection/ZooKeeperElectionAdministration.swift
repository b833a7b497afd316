import Coordination
import Foundation
import Logging
import ZooKeeper

/// `hawser admin` on a ZooKeeper election: reads and sets the election's nodes directly.
public struct ZooKeeperElectionAdministration: ElectionAdministration {
    let configuration: ZooKeeperElectionConfiguration

    public init(configuration: ZooKeeperElectionConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
    }

    public func snapshot() async throws -> ElectionSnapshot {
        try await withClient { client in
            let children = try await client.getChildren(configuration.candidatesPath).children
            var candidates: [Candidate] = []
            for node in ElectionRules.queue(children) {
                guard let data = try? await client.getData("\(configuration.candidatesPath)/\(node.name)").data else { continue }
                candidates.append((try? JSONDecoder().decode(Candidate.self, from: Data(data))) ?? Candidate(id: node.id))
            }
            let record = EpochRecord.decode(try await client.getData(configuration.epochPath).data)
            // The epoch record names the last leader; it leads still only if its node is still first.
            let leader = record.flatMap { record in ElectionRules.queue(children).first?.name == record.node ? record.leader : nil }
            return ElectionSnapshot(leader: leader, epoch: record?.epoch ?? .zero, candidates: candidates,
                                    preferred: try await string(client, configuration.preferredPath),
                                    switchoverTarget: try await string(client, configuration.switchoverPath))
        }
    }

    public func setPreferred(_ id: String?) async throws {
        if let id { try Candidate.validate(id: id) }
        try await withClient { client in
            _ = try await client.setData(configuration.preferredPath, data: Array((id ?? "").utf8))
        }
    }

    public func switchover(to id: String) async throws {
        try Candidate.validate(id: id)
        try await withClient { client in
            let children = try await client.getChildren(configuration.candidatesPath).children
            guard ElectionRules.queue(children).contains(where: { $0.id == id }) else {
                throw CoordinationError.unknownCandidate(id)
            }
            let record = EpochRecord.decode(try await client.getData(configuration.epochPath).data)
            if let record, record.leader == id, ElectionRules.queue(children).first?.name == record.node { return }  // already leads
            _ = try await client.setData(configuration.switchoverPath, data: Array(id.utf8))
        }
    }

    /// Each command uses its own short session: nothing to close.
    public func close() async {}

    private func string(_ client: ZooKeeperClient, _ path: String) async throws -> String? {
        let data = try await client.getData(path).data
        return data.isEmpty ? nil : String(decoding: data, as: UTF8.self)
    }

    private func withClient<T: Sendable>(_ body: (ZooKeeperClient) async throws -> T) async throws -> T {
        var zk = try ZooKeeperConfiguration(connectString: configuration.connectString)
        zk.sessionTimeout = configuration.sessionTimeout
        zk.initialConnectTimeout = .seconds(5)
        var logger = Logger(label: "hawser.admin")
        logger.logLevel = .warning
        return try await withZooKeeperClient(configuration: zk, logger: logger) { client in
            try await ZooKeeperPaths.ensure(client, configuration)
            return try await body(client)
        }
    }
}
