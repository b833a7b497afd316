import Coordination
import Foundation
import HawserTestSupport
import JetStream
import JetStreamLog
import Logging
import Notary
import Synchronization
import Testing

/// The notary's log on a real 3-server JetStream cluster.
@Suite(.serialized, .timeLimit(.minutes(10))) struct JetStreamLogTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func makeLog(_ cluster: NATSCluster, stream: String = "LOG", _ adjust: (inout JetStreamLogConfiguration) -> Void = { _ in })
        -> JetStreamLog {
        var configuration = JetStreamLogConfiguration(servers: cluster.urls)
        configuration.stream = stream
        adjust(&configuration)
        return JetStreamLog(configuration: configuration, logger: Self.logger)
    }

    /// Appends `payload` at the log's end, as racing appenders do: after a conflict it looks at
    /// the end again, and finds its own entry there when an earlier attempt of it landed.
    func appendAtEnd(_ log: JetStreamLog, _ payload: [UInt8]) async throws -> UInt64 {
        while true {
            let last = try await log.lastPosition()
            do {
                try await log.append(payload, after: last)
                return last + 1
            } catch is LogAppendConflict {
                if try await log.read(after: last, limit: 1).first?.payload == payload { return last + 1 }
            }
        }
    }

    @Test(.enabled(if: NATSCluster.enforcesConditionalAppends, "nats-server 2.9 does not enforce conditional appends under concurrency"))
    func appendsAreConditionalOnTheLogsEndAndReadBackInOrder() async throws {
        try await withNATSCluster { cluster in
            let log = makeLog(cluster)
            #expect(try await log.lastPosition() == 0)
            try await log.append(Array("first".utf8), after: 0)
            // A second append expecting the same end is refused and stores nothing.
            await #expect(throws: LogAppendConflict(expected: 0)) { try await log.append(Array("second".utf8), after: 0) }
            await #expect(throws: LogAppendConflict(expected: 5)) { try await log.append(Array("ahead".utf8), after: 5) }
            #expect(try await log.lastPosition() == 1)

            let positions = try await withThrowingTaskGroup(of: (Int, UInt64).self) { group in
                for i in 0..<60 { group.addTask { (i, try await appendAtEnd(log, Array("entry \(i)".utf8))) } }
                return try await group.reduce(into: [Int: UInt64]()) { $0[$1.0] = $1.1 }
            }
            #expect(Set(positions.values) == Set(2...61), "each racing append has its own position")
            #expect(try await log.lastPosition() == 61)

            var read = [LogEntry]()
            while read.count < 61 { read += try await log.read(after: read.last?.position ?? 0, limit: 16) }
            #expect(read.map(\.position) == Array(1...61))
            #expect(read[0].payload == Array("first".utf8))
            for (i, position) in positions {
                #expect(read[Int(position) - 1].payload == Array("entry \(i)".utf8))
            }
            // Reading again from an earlier position starts a new reader there.
            #expect(try await log.read(after: 10, limit: 3).map(\.position) == [11, 12, 13])
            await log.close()
        }
    }

    /// A replica is not sent its own reports back (NATS `echo` off), but it hears a second
    /// process, on another connection, that publishes under its id.
    @Test(.timeLimit(.minutes(2))) func aReplicaHearsOthersReportsButNotItsOwn() async throws {
        try await withNATSCluster { cluster in
            let a = makeLog(cluster), b = makeLog(cluster)
            let toA = try await a.reports(), toB = try await b.reports()
            // B's subscription may reach its server after A's first reports: A sends until B hears one.
            #expect(try await firstReport(toB, whileSending: { try await a.publish(report: [1]) }) == [1])
            // A subscribed before it published, so with echo its own [1] would come first.
            #expect(try await firstReport(toA, whileSending: { try await b.publish(report: [2]) }) == [2])
            await a.close()
            await b.close()
        }
    }

    /// The first report `stream` yields, calling `send` every 100 ms until it does.
    func firstReport(_ stream: AsyncThrowingStream<[UInt8], any Error>,
                     whileSending send: @escaping @Sendable () async throws -> Void) async throws -> [UInt8]? {
        try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            group.addTask {
                for try await report in stream { return report }
                return nil
            }
            group.addTask {
                while true {
                    try await send()
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    @Test func readWaitsForTheNextEntry() async throws {
        try await withNATSCluster { cluster in
            let log = makeLog(cluster)
            try await log.append([1], after: 0)
            let (started, start) = AsyncStream.makeStream(of: Void.self)
            async let waited: [LogEntry] = {
                start.yield()
                return try await log.read(after: 1, limit: 10)
            }()
            for await _ in started { break }
            try await log.append([2], after: 1)
            #expect(try await waited == [LogEntry(position: 2, payload: [2])])
            await log.close()
        }
    }

    /// Three copies on one server that is not clustered: said at once, not retried for 30 s as if
    /// a cluster were electing and then thrown as the server's 500.
    @Test func aReplicatedStreamOnAServerThatIsNotClusteredIsAConfigurationProblem() async throws {
        try await withNATSCluster(size: 1) { cluster in
            let log = makeLog(cluster) { $0.replicas = 3 }
            await #expect(throws: JetStreamLogError.replicasNeedACluster(replicas: 3, stream: "LOG")) {
                _ = try await log.firstPosition()
            }
            await log.close()
        }
    }

    @Test func retentionBoundsTheStreamAndAReplicaBehindItIsToldToRestore() async throws {
        try await withNATSCluster { cluster in
            let log = makeLog(cluster) { $0.maxEntries = 5 }
            for i in 0..<12 { try await log.append([UInt8(i)], after: UInt64(i)) }
            #expect(try await log.firstPosition() == 8)
            #expect(try await log.read(after: 7, limit: 10).map(\.position) == [8, 9, 10, 11, 12])
            do {
                _ = try await log.read(after: 2, limit: 10)
                Issue.record("reading removed entries must fail")
            } catch let error as JetStreamLogError {
                #expect(error == .positionRemoved(position: 2, firstAvailable: 8, stream: "LOG"))
                #expect(error.description.contains("restore this replica from a snapshot"))
            }
            let ahead = await #expect(throws: JetStreamLogError.aheadOfStream(position: 20, streamEnd: 12, stream: "LOG")) {
                _ = try await log.read(after: 20, limit: 10)
            }
            // An outside checker followed the old advice, "delete this replica's notary.sqlite",
            // on every replica after the stream was lost: the notary then signed 15,322 spends of
            // states it had signed spent before. The store is the one record left.
            let advice = ahead.map { "\($0)" } ?? ""
            #expect(advice.contains("Keep this replica's notary.sqlite") && !advice.contains("delete this"), "\(advice)")
            await log.close()
        }
    }

    /// A replica whose log section differs from the stream's settings does not change the stream
    /// the others use: it refuses to start, naming each difference. Before, it set the stream to
    /// its own values: `replicas` 1 and `maxEntries` 2,000 cut a three-way stream to one server and
    /// dropped its older entries at once (found from outside).
    @Test func aReplicaWithOtherStreamSettingsDoesNotChangeTheStream() async throws {
        try await withNATSCluster { cluster in
            let log = makeLog(cluster) { $0.replicas = 3 }
            for i in 0..<12 { try await log.append([UInt8(i)], after: UInt64(i)) }
            let other = makeLog(cluster) { $0.replicas = 1; $0.maxEntries = 5 }
            let refused = await #expect(throws: JetStreamLogError.self) { _ = try await other.firstPosition() }
            #expect(refused == .streamSettingsDiffer(stream: "LOG", ["log.replicas: the stream has 3, this replica 1",
                                                                     "log.maxEntries: the stream has none, this replica 5"]),
                    "\(String(describing: refused))")
            await other.close()
            // The stream is as it was, and a replica with the same settings still starts.
            let same = makeLog(cluster) { $0.replicas = 3 }
            let (first, last) = (try await same.firstPosition(), try await same.lastPosition())
            #expect(first == 1 && last == 12)
            await same.close()
            await log.close()
        }
    }

    /// kill -9 the stream leader while four appenders race for the log's end: every append that
    /// returned holds its payload at its position, and no payload is stored twice (retries carry
    /// the same message id, and a retry whose first attempt landed finds it there).
    @Test(.enabled(if: NATSCluster.enforcesConditionalAppends, "nats-server 2.9 does not enforce conditional appends under concurrency"))
    func conditionalAppendsSurviveTheLossOfTheStreamLeader() async throws {
        try await withNATSCluster { cluster in
            let log = makeLog(cluster)
            try await log.append([0], after: 0)
            let leaderName = try await NATSClient.withConnection(NATSOptions(servers: cluster.urls)) { client in
                try await JetStreamContext(client: client).streamInfo("LOG").cluster?.leader
            }
            let leader = try #require(cluster.servers.first { $0.name == leaderName })
            let acknowledged = Acknowledged()
            let (progress, announce) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        for i in 0..<40 {
                            let payload = Array("w\(worker)-\(i)".utf8)
                            let position = try await appendAtEnd(log, payload)
                            announce.yield(acknowledged.entries.withLock { $0[position] = payload; return $0.count })
                        }
                    }
                }
                group.addTask {
                    for await count in progress where count >= 30 { break }
                    leader.kill9()
                }
                try await group.waitForAll()
            }
            let acks = acknowledged.entries.withLock { $0 }
            #expect(acks.count == 160, "every append was acknowledged at its own position")
            let end = try await log.lastPosition()
            var read = [LogEntry]()
            while read.last?.position ?? 0 < end { read += try await log.read(after: read.last?.position ?? 0, limit: 100) }
            let byPosition = Dictionary(uniqueKeysWithValues: read.map { ($0.position, $0.payload) })
            for (position, payload) in acks { #expect(byPosition[position] == payload) }
            let payloads = read.map(\.payload)
            #expect(Set(payloads).count == payloads.count, "no entry was stored twice")
            await log.close()
        }
    }

    /// While a clustered stream has no leader, every member that sees none answers stream info
    /// with its own state, however far behind. A server that missed appends (paused) and is left
    /// alone does so; the log's end must come from the stream's leader all the same (a sequencer
    /// that took the member's end for the log's found its own applied entries "lost": `truncated`).
    @Test(.timeLimit(.minutes(3))) func theLogsEndComesFromTheStreamLeaderNotFromALaggingMember() async throws {
        try await withNATSCluster { cluster in
            let log = makeLog(cluster)
            try await log.append([0], after: 0)
            let leaderName = try await NATSClient.withConnection(NATSOptions(servers: cluster.urls)) { client in
                try await JetStreamContext(client: client).streamInfo("LOG").cluster?.leader
            }
            let lagging = try #require(cluster.servers.first { $0.name != leaderName })
            let others = cluster.servers.filter { $0.name != lagging.name }
            lagging.pause()
            for i in 1...5 { try await log.append([UInt8(i)], after: UInt64(i)) }
            for server in others { server.kill9() }
            lagging.resume()

            // What NATS does: alone, the member answers with its own end (before 6), naming no
            // leader. Not always: in about one run of three here it stays silent.
            do {
                try await awaitAnswer(from: [lagging.url], within: .seconds(45)) {
                    $0.state.lastSequence < 6 && ($0.cluster?.leader ?? "").isEmpty
                }
            } catch is EventuallyTimedOut {
                withKnownIssue("the lagging member did not answer on its own this time", isIntermittent: true) {
                    Issue.record("no stale answer to check against")
                }
                await log.close()
                return
            }

            // The others start again; until they have elected a leader, the member answers alone.
            try others.forEach(cluster.restart)
            let end = try await log.lastPosition()
            #expect(end == 6)
            await log.close()
        }
    }

    /// A stream's end before an entry this log has already appended is not believed at once: a
    /// member that has not caught up can answer as if it led (a replica that believed such an
    /// answer stopped with its applied entries "lost", `truncated`, in a fault run on 2.15). It is
    /// asked again: here the stream is made anew, and the end returned is the one that reached
    /// the log's position again, not the empty stream's; so is an end before what the caller
    /// says it applied. An end that stays low is believed.
    @Test(.timeLimit(.minutes(2))) func anEndBeforeWhatTheLogSawIsAskedAgain() async throws {
        try await withNATSCluster { cluster in
            let log = makeLog(cluster)
            for i in 0..<5 { try await log.append([UInt8(i)], after: UInt64(i)) }
            try await NATSClient.withConnection(NATSOptions(servers: cluster.urls)) { client in
                let js = JetStreamContext(client: client)
                func makeAnew() async throws {
                    try await js.deleteStream("LOG")
                    _ = try await js.createOrUpdateStream(StreamConfig(name: "LOG", subjects: [log.configuration.subject],
                                                                       replicas: 3, storage: .file))
                }
                try await makeAnew()
                let asked = try await client.subscribe("$JS.API.STREAM.INFO.LOG")
                let end = Task { try await log.lastPosition() }
                // Once the log has asked (and been told 0), the stream grows past what it saw. It
                // asks again every 100 ms and believes the first end at or past 5, so it may come
                // back before the sixth entry is in.
                for try await _ in asked { break }
                for i in 0..<6 { _ = try await js.publish(log.configuration.subject, payload: [UInt8(i)]) }
                let grown = try await end.value
                #expect((5...6).contains(grown), "\(grown)")
                await asked.unsubscribe()

                // A process that has read nothing of the log (a replica just restarted) asks
                // with the position it applied: the same.
                try await makeAnew()
                let fresh = makeLog(cluster)
                let askedAgain = try await client.subscribe("$JS.API.STREAM.INFO.LOG")
                let freshEnd = Task { try await fresh.lastPosition(applied: 3) }
                for try await _ in askedAgain { break }
                for i in 0..<4 { _ = try await js.publish(log.configuration.subject, payload: [UInt8(i)]) }
                let freshGrown = try await freshEnd.value
                #expect((3...4).contains(freshGrown), "\(freshGrown)")
                await askedAgain.unsubscribe()
                await fresh.close()

                try await makeAnew()
                #expect(try await log.lastPosition() == 0, "an end that stays before what the log saw is believed")
            }
            await log.close()
        }
    }

    /// Each append gives up after its own time-out; the 10 s an end before what the log saw is
    /// asked again was counted afresh by each, so it was never believed (a rolled-back stream
    /// stalled every request, found from outside). The answers of calls that gave up count.
    @Test(.timeLimit(.minutes(2))) func anEndBeforeWhatTheLogSawIsBelievedAcrossCallsThatGiveUp() async throws {
        try await withNATSCluster { cluster in
            let log = makeLog(cluster)
            for i in 0..<3 { try await log.append([UInt8(i)], after: UInt64(i)) }
            try await NATSClient.withConnection(NATSOptions(servers: cluster.urls)) { client in
                let js = JetStreamContext(client: client)
                try await js.deleteStream("LOG")
                _ = try await js.createOrUpdateStream(StreamConfig(name: "LOG", subjects: [log.configuration.subject], replicas: 3, storage: .file))
                _ = try await js.publish(log.configuration.subject, payload: [9])
            }
            // Callers that give up before the bound, one after another, as requests do.
            let started = ContinuousClock.now
            var end: UInt64?
            while end == nil && ContinuousClock.now - started < .seconds(30) {
                end = try? await withDeadline(.seconds(3), "the log's end") { try await log.lastPosition(applied: 3) }
            }
            #expect(end == 1, "believed within the bound, though no one caller waited for it")
            await log.close()
        }
    }

    /// A purged stream keeps its sequence, and its one subject holds nothing: an append that
    /// expected the subject's last sequence was refused for ever (found from outside).
    @Test(.timeLimit(.minutes(2))) func appendsGoOnAfterTheStreamIsPurged() async throws {
        try await withNATSCluster { cluster in
            let log = makeLog(cluster)
            for i in 0..<3 { try await log.append([UInt8(i)], after: UInt64(i)) }
            try await NATSClient.withConnection(NATSOptions(servers: cluster.urls)) { client in
                try await JetStreamContext(client: client).purgeStream("LOG")
            }
            #expect(try await log.lastPosition(applied: 3) == 3)
            try await log.append([3], after: 3)
            await #expect(throws: LogAppendConflict(expected: 3)) { try await log.append([4], after: 3) }
            #expect(try await log.read(after: 3, limit: 10) == [LogEntry(position: 4, payload: [3])])
            await log.close()
        }
    }

    /// Returns once the servers at `urls` answer stream info of `LOG` with an answer that `matches`.
    func awaitAnswer(from urls: [String], within limit: Duration = .seconds(90),
                     _ matches: @escaping @Sendable (StreamInfo) -> Bool) async throws {
        var options = NATSOptions(servers: urls)
        options.ignoreDiscoveredServers = true
        options.retryOnFailedInitialConnect = true  // it may have only just been started
        let client = try await NATSClient.connect(options)
        let js = JetStreamContext(client: client, timeout: .seconds(2))
        do {
            try await eventually("a matching stream info answer from \(urls)", timeout: limit) {
                guard let info = try? await js.streamInfo("LOG") else { return false }
                return matches(info)
            }
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    @Test func configurationProblemsAreReported() {
        var c = JetStreamLogConfiguration(servers: [])
        c.stream = "a.b"
        c.replicas = 2
        c.maxEntries = -1
        c.maxAge = .seconds(10)
        c.user = "u"
        let problems = c.problems(prefix: "log.")
        #expect(problems.contains("log.servers must name at least one NATS server"))
        #expect(problems.contains { $0.hasPrefix("log.stream must be") })
        #expect(problems.contains("log.replicas must be 1, 3 or 5"))
        #expect(problems.contains { $0.hasPrefix("log.maxEntries") })
        #expect(problems.contains { $0.hasPrefix("log.maxAgeSeconds must be at least the duplicate window") })
        #expect(problems.contains("log.user and log.password go together"))
        #expect(JetStreamLogConfiguration(servers: ["nats://127.0.0.1:4222"]).problems().isEmpty)

        // Beyond what JetStream's 64-bit nanoseconds hold, a replica crashed creating the stream.
        var long = JetStreamLogConfiguration(servers: ["nats://127.0.0.1:4222"])
        long.duplicateWindow = .seconds(9_300_000_000)
        long.maxAge = .seconds(10_000_000_000)
        #expect(long.problems(prefix: "log.") == ["log.maxAgeSeconds must be at most 3155760000 (100 years)",
                                                  "log.duplicateWindowSeconds must be at most 3155760000 (100 years)"])
        long.duplicateWindow = .seconds(3_155_760_000)
        long.maxAge = .seconds(3_155_760_000)
        #expect(long.problems().isEmpty)
    }
}

/// Payloads by the position their append returned.
final class Acknowledged: Sendable {
    let entries = Mutex<[UInt64: [UInt8]]>([:])
}
