import Foundation
import HawserCore
@testable import HawserNode
import HawserTestSupport
import Testing

/// A process serves only once what it needs answers (002's "domino" start): a node started while
/// its PostgreSQL server is down says what it waits for, and serves once the server is back. A
/// hot-cold node does not wait: its watchdog must see it exit, to hand over to the other machine.
@Suite(.serialized, .timeLimit(.minutes(3))) struct DominoStartTests {
    @Test func aNodeWaitsForItsDatabaseAndSaysSo() async throws {
        let dir = try TemporaryDirectory()
        let postgres = try await PostgresServer.start()
        defer { postgres.stop() }
        let config = try Self.node(in: dir.path, url: try await postgres.createDatabase())
        try await postgres.crash()
        let log = dir.path + "/node.log"
        let starting = Task { try await HawserProcess.node(config: config, logLevel: "warning", log: log) }
        defer { starting.cancel() }
        try await eventually("the node says it waits for its database") {
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("waiting for the database before serving: cannot connect to PostgreSQL") == true
        }
        try await postgres.startAgain()
        let (node, port) = try await starting.value
        // It listens while it resumes its unfinished flows; ready once they run again.
        try await HotWarmTests().awaitReady("http://127.0.0.1:\(port)", "ready")
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("the database answers: starting"))
        #expect(await node.terminate() == 0)
    }

    /// SIGTERM during the wait ends it as it ends a running node: exit 0. The signal killed the
    /// process instead (status 143), before any handler was installed (found from outside).
    @Test func aSignalStopsTheWaitForTheDatabase() async throws {
        let dir = try TemporaryDirectory()
        let closed = try FreePorts.take(1)[0]
        let config = try Self.node(in: dir.path, url: "postgres://hawser@127.0.0.1:\(closed)/node")
        let log = dir.path + "/node.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: HawserProcess.binary)
        process.arguments = ["node", "run", "--config", config, "--log-level", "warning"]
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try ChildProcesses.start { try process.run() }
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        try await eventually("the node waits for its database") {
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("waiting for the database before serving") == true
        }
        process.terminate()
        #expect(process.waitUntilGone(within: .seconds(30)))
        #expect(process.terminationReason == .exit && process.terminationStatus == 0,
                "\(process.terminationReason) \(process.terminationStatus): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    @Test func aHotColdNodeExitsForItsWatchdogInstead() async throws {
        let dir = try TemporaryDirectory()
        let closed = try FreePorts.take(1)[0]
        var configuration = try NodeConfiguration.load(try Self.node(in: dir.path, url: "postgres://hawser@127.0.0.1:\(closed)/node"))
        configuration.ha.mode = .hotCold
        configuration.notary = .remote(urls: ["http://127.0.0.1:\(closed)"], publicKey: SigningKey().publicKey.base64)
        configuration.notaryName = nil
        configuration.notaryKeyFile = nil
        try configuration.save(dir.path + "/node.json")
        let (status, output) = try await HawserProcess.runToExit(["node", "run", "--config", dir.path + "/node.json"],
                                                                 environment: [HAConfiguration.fenceEpochVariable: "1"])
        #expect(status != 0 && output.contains("cannot connect to PostgreSQL at 127.0.0.1:\(closed)") && output.contains("database_unavailable"),
                "\(output)")
    }

    /// A single node's configuration in `root` (made by `hawser node init`, the embedded notary) on the PostgreSQL database `url`.
    static func node(in root: String, url: String) throws -> String {
        _ = try Node.initialise(directory: root, port: 0, parties: ["O=Alice, L=London, C=GB"], username: "ops", password: "secret")
        var configuration = try NodeConfiguration.load(root + "/node.json")
        configuration.database.kind = .postgres
        configuration.database.url = url
        try configuration.save(root + "/node.json")
        return root + "/node.json"
    }
}
