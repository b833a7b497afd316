import Foundation
import HawserTestSupport
import Sim
import Testing

/// The fault sequence that made nats-server 2.9.10's stream diverge in black-box runs, and seeded
/// variants of it, under load with clients failing over between replicas: a replica and a
/// non-leading nats-server killed together, both restarted; then a replica paused while the
/// stream's leading server is killed; then both undone. Within the failure model (at most one
/// server and one replica down at a time).
///
/// It must never sign two spends of one state. On a nats-server that keeps its promises (2.10 and
/// later) the cluster also recovers and every replica converges; on 2.9 a replica may instead stop
/// with `log_diverged`. `HAWSER_FAULT_SEEDS` (e.g. `1-20`) chooses the seeds; the suite runs two
/// (`scripts/fault-cluster.sh` runs more).
@Suite(.serialized) struct DivergedStreamFaultTests {
    static let seeds: [UInt64] = {
        guard let text = ProcessInfo.processInfo.environment["HAWSER_FAULT_SEEDS"] else { return [1, 2] }
        return SeedList.parse(text) ?? []
    }()

    @Test(.timeLimit(.minutes(5)), arguments: seeds)
    func faultsThatDivergedTheStreamNeverSignTwoSpends(seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        func seconds(_ range: ClosedRange<Int>) -> Duration { .milliseconds(Int.random(in: range.lowerBound * 1000...range.upperBound * 1000, using: &random)) }
        let keepsPromises = NATSCluster.enforcesConditionalAppends
        try await withNotaryCluster({ $0.limits.requestTimeoutMillis = 2_000 }) { cluster in
            let load = ClusterLoad(seed: seed)
            let history = load.history
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await load.run(urls: cluster.urls, callers: 12) }
                defer { load.stop() }
                func phase(_ name: String, required: Bool) async {
                    let reached = await history.awaitAnswers(60, within: .seconds(45))
                    if required { #expect(reached, "seed \(seed), \(name): fewer than 60 answers within 45 s") }
                }
                await phase("warm-up", required: true)

                // A replica (the sequencer, r0, most often) and a server that does not lead the stream.
                let killed = Int.random(in: 0..<4, using: &random) == 0 ? 1 : 0
                let leader = try #require(try await cluster.streamLeader())
                let follower = try #require(cluster.nats.servers.filter { $0.name != leader.name }.randomElement(using: &random))
                cluster.kill(killed)
                follower.kill9()
                try await Task.sleep(for: seconds(3...6))
                try cluster.nats.restart(follower)
                try await cluster.restart(killed)
                try await Task.sleep(for: seconds(5...9))

                // Another replica paused while the stream's leading server is down.
                let paused = [1, 2].randomElement(using: &random)!
                let leaderNow = try #require(try await cluster.streamLeader())
                cluster.pause(paused)
                leaderNow.kill9()
                try await Task.sleep(for: seconds(4...7))
                try cluster.nats.restart(leaderNow)
                cluster.resume(paused)
                await phase("after the faults", required: keepsPromises)

                load.stop()
                try await group.waitForAll()
            }
            try await ClusterChecks.verify(history, on: cluster, requireAllServing: keepsPromises)
        }
    }
}
