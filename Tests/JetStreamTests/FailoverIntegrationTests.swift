import HawserTestSupport
import Foundation
import JetStream
import NIOConcurrencyHelpers
import NIOCore
import Testing

@Suite("Failover against a 3-server cluster", .serialized, .timeLimit(.minutes(10)))
struct FailoverIntegrationTests {
    /// Kills (-9) the server the client is connected to while it publishes with acknowledgement and
    /// a reader follows the stream. The client must move to another server, resubscribe, and every
    /// acknowledged message must be in the stream exactly once, read in order without gaps.
    @Test func killConnectedServerUnderPublishLoad() async throws {
        try await withNATSCluster { cluster in
            // Create the stream first, then connect the client to its leader's server so the kill
            // takes out both the client's connection and the stream leader.
            let leaderName = try await NATSClient.withConnection(clientOptions(cluster)) { setup in
                let info = try await createStreamWhenReady(
                    JetStreamContext(client: setup), StreamConfig(name: "FAULT", subjects: ["fault.>"], replicas: 3))
                return info.cluster?.leader
            }
            let leader = cluster.servers.first { $0.name == leaderName } ?? cluster.servers[0]
            let options = clientOptions(cluster) {
                $0.name = "failover-test"
                $0.servers = [leader.url] + cluster.urls.filter { $0 != leader.url }
                $0.randomizeServers = false
            }
            try await NATSClient.withConnection(options) { client in
                let js = JetStreamContext(client: client)
                let events = client.events()
                let core = try await client.subscribe("core.ping")
                let originalServer = try #require(await client.connectedServer)

                let acked = NIOLockedValueBox<[Int: UInt64]>([:])
                // Each acknowledgement announces the new count, so the test awaits counts, not polls.
                let (ackCounts, ackCount) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
                let stop = NIOLockedValueBox(false)
                let followed = NIOLockedValueBox<[UInt64]>([])
                let stats = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                    // A reader follows the stream through the failover until the end marker.
                    group.addTask {
                        for try await batch in js.stream("FAULT").read(from: 1, batch: 50) {
                            followed.withLockedValue { $0.append(contentsOf: batch.map(\.sequence)) }
                            if batch.contains(where: { $0.string == "end" }) { break }
                        }
                        return (-1, 0)
                    }
                    // The publish loop: each message is retried with the same Nats-Msg-Id until
                    // acknowledged, so retries are safe.
                    group.addTask {
                        defer { ackCount.finish() }
                        var i = 0
                        var failures = 0
                        while !stop.withLockedValue({ $0 }) {
                            i += 1
                            while true {
                                try Task.checkCancellation()
                                do {
                                    let ack = try await js.publish(
                                        "fault.\(i % 4)", payload: "\(i)",
                                        options: PublishOptions(messageID: "msg-\(i)", timeout: .seconds(2)))
                                    ackCount.yield(acked.withLockedValue { $0[i] = ack.sequence; return $0.count })
                                    break
                                } catch {
                                    failures += 1
                                    try await Task.sleep(for: .milliseconds(20))
                                }
                            }
                        }
                        return (i, failures)
                    }
                    func ackedCount() -> Int { acked.withLockedValue { $0.count } }
                    let clock = ContinuousClock()
                    /// Awaits the acknowledgement count reaching `target`, for at most 30 s.
                    func waitForAcks(_ target: Int, _ what: String) async throws {
                        let reached = try await withThrowingTaskGroup(of: Bool.self) { wait in
                            wait.addTask {
                                for await count in ackCounts where count >= target { return true }
                                return false
                            }
                            wait.addTask {
                                try await Task.sleep(for: .seconds(90))  // a bound: the first acks may wait long for a busy machine
                                return false
                            }
                            defer { wait.cancelAll() }
                            return try await wait.next()!
                        }
                        if !reached { throw TestClusterError.notReady(what) }
                    }
                    try await waitForAcks(200, "200 acks before the kill")

                    let victim = try #require(cluster.server(port: originalServer.port))
                    let killedAt = clock.now
                    victim.kill9()
                    let ackedAtKill = ackedCount()

                    // The client reports the reconnect to another server.
                    var reconnectedTo: ServerAddress?
                    for await event in events {
                        if case .reconnected(let server) = event {
                            reconnectedTo = server
                            break
                        }
                    }
                    #expect(reconnectedTo != nil && reconnectedTo?.port != originalServer.port)
                    let reconnectedAfter = clock.now - killedAt
                    try await waitForAcks(ackedAtKill + 200, "200 acks after the kill")
                    print("failover: reconnected after \(reconnectedAfter), 200 more acks after \(clock.now - killedAt)")
                    stop.withLockedValue { $0 = true }
                    let stoppedAt = clock.now
                    defer { print("failover: publisher and reader finished \(clock.now - stoppedAt) after stop") }
                    var result = (0, 0)
                    while let r = try await group.next() {
                        if r.0 >= 0 {
                            result = r
                            // The publisher has stopped: tell the reader where the end is.
                            _ = try await js.publish("fault.end", payload: "end", options: PublishOptions(timeout: .seconds(10)))
                        }
                    }
                    return result
                }
                let (published, failures) = stats
                #expect(await client.connectedServer?.port != originalServer.port)

                // Resubscribed: a message from another client on a surviving server arrives.
                let survivor = try #require(cluster.servers.first { $0.isRunning })
                try await NATSClient.withConnection(clientOptions(cluster) { $0.servers = [survivor.url] }) { other in
                    try await client.flush()
                    try await other.publish("core.ping", payload: "after failover")
                    try await other.flush()
                }
                #expect(try await core.next(timeout: .seconds(5))?.string == "after failover")

                // Every acknowledged publish is stored once, at its acknowledged sequence.
                let acks = acked.withLockedValue { $0 }
                let sequencesFollowed = followed.withLockedValue { $0 }
                #expect(sequencesFollowed == Array(1...UInt64(sequencesFollowed.count)), "the reader skipped or repeated")
                let last = try await js.streamInfo("FAULT").state.lastSequence
                var seen: [Int: UInt64] = [:]
                var expected: UInt64 = 1
                read: for try await batch in js.stream("FAULT").read(from: 1, batch: 100) {
                    for m in batch {
                        #expect(m.sequence == expected)
                        expected = m.sequence + 1
                        if m.string == "end" { break read }
                        let i = try #require(Int(m.string))
                        #expect(seen[i] == nil, "message \(i) stored twice")
                        seen[i] = m.sequence
                        if m.sequence >= last { break read }
                    }
                }
                for (i, sequence) in acks {
                    #expect(seen[i] == sequence, "acknowledged message \(i) missing or moved")
                }
                #expect(acks.count >= 400 && acks.count <= published)
                print("failover: \(acks.count) acknowledged, \(failures) failed attempts, \(last) stored")
            }
        }
    }
}
