import AsyncHTTPClient
import Foundation
import HawserClient
import HawserCore
import HawserNode
import HawserTestSupport
import JetStream
import Testing

/// Three notary replicas on a 3-server JetStream cluster, under steady load with double-spend
/// attempts and retries, through one fault at a time: kill -9 a replica, kill -9 the stream's
/// leading nats-server, SIGSTOP a replica for longer than every timeout, and delete a replica's
/// database. Then the recorded history is checked against every replica.
@Suite(.serialized) struct ClusterFaultTests {
    /// Answers to await in each phase; each phase is bounded by `phaseLimit`.
    static let perPhase = 120
    static let phaseLimit = Duration.seconds(60)

    @Test(.timeLimit(.minutes(6)))
    func historyHoldsThroughReplicaAndServerFaults() async throws {
        try await withNotaryCluster({ $0.limits.requestTimeoutMillis = 2_000 }) { cluster in
            let load = ClusterLoad()
            let history = load.history
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await load.run(urls: cluster.urls, callers: 12) }
                defer { load.stop() }
                func phase(_ name: String) async {
                    let reached = await history.awaitAnswers(Self.perPhase, within: Self.phaseLimit)
                    #expect(reached, "\(name): the cluster answered fewer than \(Self.perPhase) requests within \(Self.phaseLimit)")
                }
                await phase("warm-up")

                cluster.kill(0)
                await phase("replica 0 killed")
                try await cluster.restart(0)
                await phase("replica 0 restarted")

                let leader = try #require(try await cluster.streamLeader())
                leader.kill9()
                await phase("stream leader \(leader.name) killed")
                try cluster.nats.restart(leader)
                await phase("nats-server \(leader.name) restarted")

                cluster.pause(1)
                // Longer than every timeout: the request timeout (2 s), a caller's attempt timeout
                // (3 s), the NATS client's stale-connection detection (2 pings of 2 s), the
                // server's write deadline for a client that stops reading, and the 30 s after
                // which JetStream deletes the replica's idle reading consumer.
                try await Task.sleep(for: .seconds(35))
                await phase("replica 1 paused")
                cluster.resume(1)
                await phase("replica 1 resumed")

                cluster.kill(2)
                cluster.deleteStore(2)
                try await cluster.restart(2)
                await phase("replica 2 restarted without its database")

                load.stop()
                try await group.waitForAll()
            }

            #expect(history.errors.count <= history.answered / 20,
                    "too many calls failed after every retry: \(history.errors.prefix(5))")
            #expect(history.answers.values.contains { $0.outcome != .committed }, "the load included refused double spends")
            try await ClusterChecks.verify(history, on: cluster, requireAllServing: true)
        }
    }

    /// A replica added after retention removed the log's start cannot replay it; it is restored
    /// from another replica's snapshot and continues from the log.
    @Test(.timeLimit(.minutes(2)))
    func aNewReplicaStartsFromASnapshotWhenRetentionRemovedTheLogStart() async throws {
        try await withNotaryCluster(running: 2, { $0.log.maxEntries = 20 }) { cluster in
            let client = try NotaryClient(urls: [cluster.urls[0]], notaryKey: notaryKey.publicKey)
            var ids = Ids(seed: 5)
            var requests = [NotarisationRequest]()
            // One at a time: each request becomes a log entry of its own, so retention removes some.
            for _ in 0..<40 {
                let request = signed(ids.hash(), inputs: [ids.ref()])
                #expect(try await client.notarise(request).outcome == .committed)
                requests.append(request)
            }
            // The store names every transaction: nobody without the notary's key copies it.
            let anonymous = try await cluster.http.execute(HTTPClientRequest(url: cluster.urls[1] + "/v1/snapshot"), timeout: .seconds(10))
            let refusal = try await anonymous.body.collect(upTo: 1 << 16)
            #expect(anonymous.status == .unauthorized && String(buffer: refusal).contains("\"code\":\"unauthorized\""), "\(String(buffer: refusal))")
            let restore = Process()
            restore.executableURL = URL(fileURLWithPath: HawserProcess.binary)
            restore.arguments = ["notary", "restore", "--config", cluster.config(2), "--from", cluster.urls[1]]
            restore.standardOutput = FileHandle.nullDevice
            try ChildProcesses.start { try restore.run() }
            restore.waitUntilExit()
            #expect(restore.terminationStatus == 0, "hawser notary restore succeeded")

            try await cluster.restart(2)
            let more = signed(ids.hash(), inputs: [ids.ref()])
            #expect(try await client.notarise(more).outcome == .committed)
            requests.append(more)
            let end = try await NATSClient.withConnection(NATSOptions(servers: cluster.nats.urls)) { client in
                try await JetStreamContext(client: client).streamInfo("NOTARY").state
            }
            #expect(end.firstSequence > 1, "retention removed the log's start")
            let digests = try await ClusterChecks.converged(cluster, Array(cluster.urls.indices), at: end.lastSequence)
            #expect(Set(digests).count == 1)
            let restored = try NotaryClient(urls: [cluster.urls[2]], notaryKey: notaryKey.publicKey)
            for request in requests { #expect(try await restored.answer(for: request.txId).outcome == .committed) }
            try await restored.shutdown()
            try await client.shutdown()
        }
    }
}
