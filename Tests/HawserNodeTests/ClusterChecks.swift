import Foundation
import HawserClient
import HawserCore
import HawserTestSupport
import JetStream
import Testing

/// The checks every cluster fault run ends with, on what the clients heard (`ClusterHistory`)
/// and what the replicas hold:
/// - the history rules (`HistoryChecker`): a transaction answered twice got the same outcome, no
///   state is spent by two transactions among the signed answers, conflicts name real spenders;
/// - every replica that still serves (not stopped with log_diverged) reaches the log's end, and
///   they all hold the same digest (`requireAllServing`: every replica still serves);
/// - every answer a client was given holds on every replica that still serves.
enum ClusterChecks {
    static func verify(_ history: ClusterHistory, on cluster: NotaryCluster, requireAllServing: Bool) async throws {
        // The rules of `hawser check history` (docs/history.md): no double spend, no changed
        // outcome, no conflict naming a consumer that did not have the state.
        let violations = try history.violations()
        #expect(violations.isEmpty, "\(violations.count) violations of the history rules: \(violations.prefix(10))")
        let answers = history.answers

        let end = try await NATSClient.withConnection(NATSOptions(servers: cluster.nats.urls)) { client in
            try await JetStreamContext(client: client).streamInfo("NOTARY").state.lastSequence
        }
        var serving = [Int]()
        for replica in cluster.urls.indices {
            let (status, _, evidence) = try await cluster.status(replica)
            if status == "log_diverged" || status == "duplicate_replica" {
                if requireAllServing { Issue.record("replica \(replica) stopped: \(evidence)") }
            } else {
                serving.append(replica)
            }
        }
        #expect(!serving.isEmpty || !requireAllServing)
        let digests = try await converged(cluster, serving, at: end)
        #expect(Set(digests).count <= 1, "serving replicas at position \(end) differ: \(digests)")

        for replica in serving {
            let client = try NotaryClient(urls: [cluster.urls[replica]], notaryKey: notaryKey.publicKey)
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                let all = Array(answers)
                for part in 0..<8 {
                    group.addTask {
                        var bad = 0
                        for (txId, answer) in all[part...].striding(by: 8) where try await client.answer(for: txId).outcome != answer.outcome {
                            bad += 1
                        }
                        return bad
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0, "replica \(replica) disagrees with \(mismatches) answers clients were given")
            try await client.shutdown()
        }
    }

    /// Polls each replica's digest until it has applied `position` (bounded); returns the digests.
    static func converged(_ cluster: NotaryCluster, _ replicas: [Int], at position: UInt64) async throws -> [String] {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        var digests = [String]()
        for replica in replicas {
            while true {
                if let (applied, digest) = try? await cluster.digest(replica), applied >= position {
                    digests.append(digest)
                    break
                }
                guard clock.now < deadline else {
                    throw ProcessError(message: "replica \(replica) did not apply the log up to \(position) in time")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        return digests
    }
}
