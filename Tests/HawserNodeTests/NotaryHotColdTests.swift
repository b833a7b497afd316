import AsyncHTTPClient
import Foundation
import HawserClient
import HawserCore
import HawserNode
import HawserTestSupport
import HawserWire
import Testing

/// Hot-cold notaries on real processes: two `hawser watchdog`s on one SQLite lease, each with a
/// `hawser notary run` child, the notaries sharing one PostgreSQL database. A failing-over
/// `NotaryClient` keeps notarising across a kill -9 of the active notary; no state is answered
/// `committed` for two transactions and every answer heard is the record at the end. A notary
/// orphaned by its watchdog's death is deposed by the other's claim: its next write is refused
/// (`stale_epoch`), it signs nothing and exits.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root"), PostgresTrait(),
       .timeLimit(.minutes(4)))
struct NotaryHotColdTests {
    @Test func aWatchdogPairFailsOverAndTheDeposedNotaryWritesNothing() async throws {
        let server = try #require(PostgresTrait.current)
        let dir = try TemporaryDirectory()
        let root = dir.path
        let ports = try FreePorts.take(2)
        let url = ["A": "http://127.0.0.1:\(ports[0])", "B": "http://127.0.0.1:\(ports[1])"]
        let databaseURL = try await server.createDatabase()
        for (id, port) in [("A", ports[0]), ("B", ports[1])] {
            try FileManager.default.createDirectory(atPath: root + "/\(id)", withIntermediateDirectories: true)
            try writeNotaryFiles(in: root + "/\(id)", port: port) { configuration in
                configuration.database.kind = .postgres
                configuration.database.url = databaseURL
                configuration.ha.mode = .hotCold  // the watchdogs stand in the election
            }
        }
        func watchdog(_ id: String) throws -> WatchdogProcess {
            try WatchdogProcess(id: id, directory: root, arguments: [
                "--sqlite", root + "/lease.sqlite", "--lease-ms", "3000", "--renew-ms", "100", "--request-timeout-ms", "500",
                "--stand-aside-ms", "1000", "--health", url[id]! + "/health/ready", "--health-interval-ms", "100",
                "--advertise", url[id]!, "--backoff-initial-ms", "1000", "--stop-grace-ms", "5000",
                "--", HawserProcess.binary, "notary", "run", "--config", root + "/\(id)/hawser.json", "--log-level", "error",
            ])
        }
        let a = try watchdog("A")
        let first = try await WatchdogProcessTests.leadsWithHealthyChild(a)
        let b = try watchdog("B")
        try await b.await("follower") { $0.fields["leader"] == "A" }

        // A notary on PostgreSQL has no snapshot to give (every process shares its store).
        let snapshot = try await NotaryHotWarmTests().get(url["A"]! + "/v1/snapshot")
        #expect(snapshot.status == 404 && snapshot.body.contains("\"code\":\"no_snapshot\""), "\(snapshot)")

        let client = try NotaryClient(urls: [url["A"]!, url["B"]!], notaryKey: notaryKey.publicKey,
                                      retryPolicy: RetryPolicy(maxAttempts: 1_000, baseBackoff: .milliseconds(20), maxBackoff: .milliseconds(200),
                                                               attemptTimeout: .seconds(10), deadline: .seconds(90)))
        let history = NotaryHotWarmTests.History()
        let pair = NotaryHotWarmTests()
        // Two clients race for each contested state across the kill.
        let load = NotaryHotWarmTests.contestedLoad(client, history)
        let second: UInt64
        do {
            try await pair.awaitAnswers(history, atLeast: 10)
            let child = try #require(a.events.first { $0.event == "child-started" }?.pid)
            let seen = b.events.count
            kill(child, SIGKILL)
            try await a.await("resigning")
            second = try await WatchdogProcessTests.leadsWithHealthyChild(b, after: seen)
            #expect(second > first, "B's notary runs under a newer epoch than A's did")
            let afterKill = history.answers.withLock { $0.count }
            try await pair.awaitAnswers(history, atLeast: afterKill + 10)
            history.stopped.store(true, ordering: .relaxed)
            await load.value
            try await pair.check(history, client)
        } catch {
            history.stopped.store(true, ordering: .relaxed)
            await load.value
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()

        // B's watchdog dies alone: its notary runs on, orphaned, at its epoch. Once B's lease has
        // lapsed A's watchdog wins, and its new notary claims a newer epoch before it is healthy;
        // the orphan, writing nothing, sees that claim within a second and exits.
        let orphan = try #require(b.events.last { $0.event == "child-started" }?.pid)
        let seen = a.events.count
        b.kill()
        let third = try await WatchdogProcessTests.leadsWithHealthyChild(a, after: seen)
        #expect(third > second)

        // A request sent to the orphan meanwhile (its append refused) or after (nobody listens)
        // is answered nothing committed, and is not in the shared store.
        let orphanClient = try NotaryClient(urls: [url["B"]!], notaryKey: notaryKey.publicKey,
                                            retryPolicy: RetryPolicy(maxAttempts: 1, baseBackoff: .milliseconds(20), maxBackoff: .milliseconds(20),
                                                                     attemptTimeout: .seconds(30), deadline: .seconds(30)))
        let late = signed(.sha256(Array("to-the-orphan".utf8)), inputs: [StateRef(txId: .sha256(Array("late".utf8)), index: 0)])
        let refused = await #expect(throws: (any Error).self) { try await orphanClient.notarise(late) }
        try await orphanClient.shutdown()
        try await eventually("the orphaned notary exited") { !isAlive(orphan) }
        let stderr = try String(contentsOfFile: b.stderrPath, encoding: .utf8)
        #expect(stderr.contains("stale_epoch") || stderr.contains("is older than epoch"),
                "the orphan names the refusal: \(refused.map { "\($0)" } ?? "") \(stderr.suffix(2000))")
        let active = try NotaryClient(urls: [url["A"]!], notaryKey: notaryKey.publicKey)
        let error = await #expect(throws: APIError.self) { try await active.answer(for: late.txId) }
        #expect(error?.code == .transactionNotFound, "\(String(describing: error))")
        try await active.shutdown()
        a.terminate()
        #expect(await a.exitStatus() == 0)
    }

    /// Whether `pid` runs (a zombie no parent reaped, as an orphan's may be, counts as gone).
    func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}

/// A hot-cold notary started by hand: it needs the watchdog's epoch and PostgreSQL, and one whose
/// epoch is older than the database's exits without writing.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root"), PostgresTrait(),
       .timeLimit(.minutes(2)))
struct NotaryHotColdStartTests {
    @Test func aHotColdNotaryNeedsItsEpochAndExitsWhenItIsStale() async throws {
        let server = try #require(PostgresTrait.current)
        let dir = try TemporaryDirectory()
        let databaseURL = try await server.createDatabase()
        try writeNotaryFiles(in: dir.path) { configuration in
            configuration.database.kind = .postgres
            configuration.database.url = databaseURL
            configuration.ha.mode = .hotCold
        }
        let config = dir.path + "/hawser.json"
        let run = ["notary", "run", "--config", config, "--log-level", "error"]
        for (value, expected) in [(nil, "HAWSER_FENCE_EPOCH is not set"), ("0", "must be a positive whole number")] {
            let (status, output) = try await HawserProcess.runToExit(run, environment: value.map { [HAConfiguration.fenceEpochVariable: $0] } ?? [:])
            #expect(status != 0 && status != SIGKILL && output.contains(expected), "\(output)")
        }
        #expect(try await server.rows("SELECT count(*) FROM pg_tables WHERE tablename = 'hawser_fence'",
                                      database: String(databaseURL.split(separator: "/").last!)) == [["0"]],
                "a refused start opens nothing")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data"), "nor makes its data directory")

        // Epoch 5: it serves, and the database learns the epoch before it is ready.
        let first = try await HawserProcess.notary(config: config, environment: [HAConfiguration.fenceEpochVariable: "5"])
        let client = try NotaryClient(urls: ["http://127.0.0.1:\(first.port)"], notaryKey: notaryKey.publicKey)
        let request = signed(.sha256(Array("hot-cold-1".utf8)), inputs: [StateRef(txId: .sha256(Array("in-1".utf8)), index: 0)])
        #expect(try await client.notarise(request).outcome == .committed)
        try await client.shutdown()
        #expect(await first.0.terminate() == 0)

        // A notary started with an older epoch (a watchdog whose win was overtaken) writes nothing and exits.
        // It listens before its claim is refused: it must be left to exit on its own (within the time limit).
        let (status, output) = try await HawserProcess.runToExit(run, environment: [HAConfiguration.fenceEpochVariable: "4"],
                                                                 killWhenListening: false)
        #expect(status != 0 && status != SIGKILL && output.contains("epoch 4 is older than epoch 5"), "\(output)")
    }
}
