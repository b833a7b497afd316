import Coordination
import Foundation
import Logging
import ZooKeeper

/// `hawser admin` on a ZooKeeper election: reads and sets the election's nodes directly, with
/// the election's credentials.
public struct ZooKeeperElectionAdministration: ElectionAdministration {
    let configuration: ZooKeeperElectionConfiguration
    /// The process's shared session, if any; else each call opens its own.
    let session: ZooKeeperSharedSession?

    public init(configuration: ZooKeeperElectionConfiguration, session: ZooKeeperSharedSession? = nil) throws {
        try configuration.validate()
        self.configuration = configuration
        self.session = session
    }

    public func snapshot() async throws -> ElectionSnapshot {
        try await withClient { client in
            let queue = ElectionRules.queue(try await client.getChildren(configuration.candidatesPath).children)
            var candidates: [Candidate] = []
            for node in queue {
                guard let data = try? await client.getData("\(configuration.candidatesPath)/\(node.name)").data else { continue }
                candidates.append((try? JSONDecoder().decode(Candidate.self, from: Data(data))) ?? Candidate(id: node.id))
            }
            let (data, stat) = try await client.getData(configuration.epochPath)
            let record = EpochRecord.decode(data)
            return ElectionSnapshot(leader: ElectionRules.leader(queue: queue, record: record),
                                    epoch: record == nil ? .zero : EpochRecord.epoch(mzxid: stat.mzxid), candidates: candidates,
                                    preferred: try await string(client, configuration.preferredPath),
                                    switchoverTarget: try await string(client, configuration.switchoverPath))
        }
    }

    /// The preferred master must be standing now (a typo or a node that never ran is refused).
    public func setPreferred(_ id: String?) async throws {
        if let id { try Candidate.validate(id: id) }
        try await withClient { client in
            if let id {
                let queue = ElectionRules.queue(try await client.getChildren(configuration.candidatesPath).children)
                guard queue.contains(where: { $0.id == id }) else { throw CoordinationError.unknownCandidate(id) }
            }
            _ = try await client.setData(configuration.preferredPath, data: Array((id ?? "").utf8))
        }
    }

    public func switchover(to id: String) async throws {
        try Candidate.validate(id: id)
        try await withClient { client in
            let queue = ElectionRules.queue(try await client.getChildren(configuration.candidatesPath).children)
            guard queue.contains(where: { $0.id == id }) else { throw CoordinationError.unknownCandidate(id) }
            let record = EpochRecord.decode(try await client.getData(configuration.epochPath).data)
            if ElectionRules.leader(queue: queue, record: record) == id { return }  // already leads
            _ = try await client.setData(configuration.switchoverPath, data: Array(id.utf8))
        }
    }

    /// Each command uses its own short session, or the shared one its owner closes: nothing to close.
    public func close() async {}

    private func string(_ client: ZooKeeperClient, _ path: String) async throws -> String? {
        let data = try await client.getData(path).data
        return data.isEmpty ? nil : String(decoding: data, as: UTF8.self)
    }

    private func withClient<T: Sendable>(_ body: @Sendable (ZooKeeperClient) async throws -> T) async throws -> T {
        var logger = Logger(label: "hawser.admin")
        logger.logLevel = .warning
        // An operator's command opens a session of its own, closed here, and waits longer for it.
        let session = self.session ?? ZooKeeperSharedSession(initialConnectTimeout: .seconds(5))
        let result: Result<T, any Error>
        do { result = .success(try await body(session.client(configuration, logger: logger))) } catch { result = .failure(error) }
        if self.session == nil { await session.close() }
        do {
            return try result.get()
        } catch ZooKeeperError.noAuth {
            throw CoordinationError.notAuthorized("the election's nodes belong to other credentials than \(configuration.credentials)")
        } catch let error as ZooKeeperError where [.connectionLoss, .operationTimeout, .requestTimeout, .sessionExpired].contains(error) {
            // The errors table's code (`coordination_unavailable`), not the client's word for it.
            throw CoordinationError.unavailable("cannot reach ZooKeeper at \(configuration.connectString): \(error)")
        }
    }
}
