import ArgumentParser
import Coordination
import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import Logging
import Testing
@testable import hawser

/// What a node user expects of the CLI (issue 14, items 11 and 12): the node's address set once,
/// flows listed, killed and resumed, the vault queried, the notary's key printed, and errors that
/// speak of what was typed.
@Suite(.timeLimit(.minutes(10))) struct NodeCLITests {
    @Test func theNodeURLComesFromTheOptionTheEnvironmentOrTheNodeConfiguration() throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        var configuration = try NodeConfiguration.load(dir.path + "/node.json")
        configuration.listen.host = "0.0.0.0"
        configuration.listen.port = 9123
        try FileManager.default.removeItem(atPath: dir.path + "/node.json")
        try configuration.save(dir.path + "/node.json")
        let config = dir.path + "/node.json"
        typealias Connection = FlowCommand.Connection
        #expect(try Connection.urls(given: ["http://a:1"], environment: ["HAWSER_NODE": "http://b:2"], configuration: config) == ["http://a:1"])
        #expect(try Connection.urls(given: [], environment: ["HAWSER_NODE": "http://b:2, http://c:3"], configuration: config)
                == ["http://b:2", "http://c:3"])
        #expect(try Connection.urls(given: [], environment: [:], configuration: config) == ["http://127.0.0.1:9123"])
        #expect(try Connection.urls(given: [], environment: [:], configuration: dir.path + "/none.json") == ["http://127.0.0.1:8090"])
        // A broken file was passed over for the default address.
        try Data("{\"listen\": ".utf8).write(to: URL(fileURLWithPath: dir.path + "/broken.json"))
        #expect(throws: ValidationError.self) {
            try Connection.urls(given: [], environment: [:], configuration: dir.path + "/broken.json")
        }
    }

    @Test func theElectionStoreComesFromOptionsElseTheEnvironment() {
        let environment = ["HAWSER_POSTGRES": "postgres://hawser:pw@db/hawser"]
        #expect(CoordinationOptions.store(options: ["zk:2181", nil, nil], environment: environment) == ["zk:2181", nil, nil])
        #expect(CoordinationOptions.store(options: [nil, nil, nil], environment: environment) == [nil, "postgres://hawser:pw@db/hawser", nil])
        #expect(CoordinationOptions.store(options: [nil, nil, nil], environment: [:]) == [nil, nil, nil])
    }

    /// A helper's findings: `--node ftp://x` was tried 8 times and failed with a client library's
    /// error; `node init` took an empty password, and left a directory behind when it refused.
    @Test func aBadNodeURLAnEmptyPasswordAndARefusedInitAreSaidAndLeaveNothing() async throws {
        let (status, output) = try await HawserProcess.runToExit(["flow", "list", "--node", "ftp://x", "--password", "p"])
        #expect(status != 0 && output.contains("--node (or HAWSER_NODE) `ftp://x` is not an http:// or https:// base URL"), "\(output)")
        let dir = try TemporaryDirectory()
        let empty = try await HawserProcess.runToExit(["node", "init", "--dir", dir.path + "/a", "--password", ""])
        #expect(empty.status != 0 && empty.output.contains("--password must not be empty"), "\(empty.output)")
        let refused = try await HawserProcess.runToExit(["node", "init", "--dir", dir.path + "/b", "--port", "70000"])
        // A usage error naming the option, as `notary init`'s (it was exit 1, naming listen.port).
        #expect(refused.status == 64 && refused.output.contains("--port must be 0...65535"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/b"), "\(refused.output)")
        let made = try await HawserProcess.runToExit(["node", "init", "--dir", dir.path + "/c", "--port", "0"])
        #expect(made.status == 0, "\(made.output)")
        let again = try await HawserProcess.runToExit(["node", "init", "--dir", dir.path + "/c", "--party", ""])
        #expect(again.status == 64 && again.output.contains("node.json already exists"), "\(again.output)")
        // A blank party name is refused as an empty one is (" " was written, and ran; found from outside).
        let blank = try await HawserProcess.runToExit(["node", "init", "--dir", dir.path + "/d", "--party", " "])
        #expect(blank.status == 64 && blank.output.contains("--party: every party needs a name (not blank)"), "\(blank.output)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/d"), "\(blank.output)")
        // A key file there is a usage error too (it was exit 1, "invalid configuration").
        let key = dir.path + "/carol.key"
        #expect(try await HawserProcess.runToExit(["party", "new", "--name", "O=Carol", "--out", key]).status == 0)
        let before = try String(contentsOfFile: key, encoding: .utf8)
        let twice = try await HawserProcess.runToExit(["party", "new", "--name", "O=Carol", "--out", key])
        #expect(twice.status == 64 && twice.output.contains("already exists; an existing key file is never overwritten"), "\(twice.output)")
        #expect(try String(contentsOfFile: key, encoding: .utf8) == before)
        // `flow status` takes an id or a client request id: neither, or both (the id was ignored), is refused.
        #expect(throws: (any Error).self) { try FlowCommand.Status.parse([]) }
        #expect(throws: (any Error).self) { try FlowCommand.Status.parse(["abc", "--client-request-id", "x"]) }
        #expect((try? FlowCommand.Status.parse(["abc"])) != nil)
    }

    @Test func flowArgumentsThatAreNotAJSONObjectAreRefusedInWordsAboutThem() {
        for (arguments, expected) in [("{owner:1}", "the arguments are not valid JSON: "),
                                      ("[1]", "the arguments must be a JSON object of the flow's fields")] {
            do {
                _ = try FlowCommand.Start.parse(["IssueTokens", arguments])
                Issue.record("\(arguments) was accepted")
            } catch {
                let message = FlowCommand.Start.message(for: error)
                #expect(message.hasPrefix(expected), "\(message)")
            }
        }
        #expect((try? FlowCommand.Start.parse(["IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":1}"])) != nil)
    }

    /// The stream told the end, then no node answered the read of the final state (a pair's
    /// database went away): the command printed `completed` and failed with only the read's error,
    /// which read as the flow's failure (found from outside).
    @Test func aFollowedFlowWhoseFinalStateCannotBeReadSaysWhichEndItReached() async throws {
        let flowJSON = #"{"id":"f1","flow":"IssueTokens","status":"running","attempts":0}"#
        let node = try FakeNode { request in
            if request.method == "POST" {
                return .init(status: 201, headers: [("Content-Type", "application/json")], body: flowJSON)
            }
            if request.path.hasSuffix("/events") {
                return .init(status: 200, headers: [("Content-Type", "text/event-stream")],
                             body: "id: 1:completed:0\nevent: status\ndata: {\"attempts\":0,\"flowId\":\"f1\",\"status\":\"completed\"}\n\n")
            }
            return .init(status: 503, headers: [("Content-Type", "application/json")],
                         body: #"{"error":{"code":"database_unavailable","message":"the node's database cannot be used now"}}"#)
        }
        defer { node.stop() }
        let elsewhere = try TemporaryDirectory()
        let (status, output) = try await HawserProcess.runToExit(
            ["flow", "start", "IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":1}", "--wait"],
            environment: ["HAWSER_NODE": node.url, "HAWSER_PASSWORD": "secret"], directory: elsewhere.path)
        #expect(status == 1, "\(output)")
        #expect(output.contains("flow f1 is completed, but its final state could not be read: "), "\(output)")
        #expect(output.contains("database_unavailable"), "\(output)")
    }

    @Test func listsKillsResumesAndQueriesTheVaultOfANodeNamedByTheEnvironment() async throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let (node, port) = try await HawserProcess.node(config: dir.path + "/node.json")
        let elsewhere = try TemporaryDirectory()  // no hawser-node/ here: everything comes from the environment
        let environment = ["HAWSER_NODE": "http://127.0.0.1:\(port)", "HAWSER_USER": "ops", "HAWSER_PASSWORD": "secret"]
        func hawser(_ arguments: String...) async throws -> (status: Int32, lines: [String]) {
            let (status, output) = try await HawserProcess.runToExit(arguments, environment: environment, directory: elsewhere.path)
            return (status, output.split(separator: "\n").map(String.init))
        }

        let started = try await hawser("flow", "start", "IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":7}",
                                       "--client-request-id", "cli-1", "--wait")
        #expect(started.status == 0, "\(started.lines)")
        let flow = try #require(started.lines.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(flow["status"] as? String == "completed")
        #expect(flow["createdAt"] is String && flow["updatedAt"] is String, "the flow's times, as the API gives them: \(flow)")
        let id = try #require(flow["id"] as? String)

        let listed = try await hawser("flow", "list", "--flow", "IssueTokens", "--status", "completed", "--since", "2000-01-01T00:00:00Z")
        #expect(listed.status == 0 && listed.lines.count == 1 && listed.lines[0].contains("\"id\":\"\(id)\""), "\(listed.lines)")
        #expect(listed.lines.first?.contains("\"clientRequestId\":\"cli-1\"") == true)
        for filter in [["--flow", "MoveTokens"], ["--client-request-id", "cli-2"], ["--until", "2000-01-01T00:00:00Z"]] {
            let none = try await HawserProcess.runToExit(["flow", "list"] + filter, environment: environment, directory: elsewhere.path)
            #expect(none.status == 0 && none.output.isEmpty, "\(filter): \(none.output)")
        }
        let badTime = try await hawser("flow", "list", "--since", "yesterday")
        #expect(badTime.status != 0 && badTime.lines.first?.contains("--since must be an RFC 3339 time") == true, "\(badTime.lines)")

        let kill = try await hawser("flow", "kill", id)
        #expect(kill.status == 1 && kill.lines.first?.contains("flow_finished (409)") == true, "\(kill.lines)")
        let resume = try await hawser("flow", "resume", id)
        #expect(resume.status == 1 && resume.lines.first?.contains("flow_not_hospitalised (409)") == true, "\(resume.lines)")

        // A followed flow that does not complete exits 1 (it exited 0 whatever the end).
        let failed = try await hawser("flow", "start", "MoveTokens", "{\"owner\":\"O=Alice\",\"newOwner\":\"O=Bob\",\"amount\":1000}", "--wait")
        #expect(failed.status == 1 && failed.lines.last?.contains("\"status\":\"failed\"") == true, "\(failed.lines)")
        let watched = try await hawser("flow", "watch", id)
        #expect(watched.status == 0, "\(watched.lines)")

        let vault = try await hawser("vault", "query", "--type", "token", "--owner", "O=Alice")
        #expect(vault.status == 0 && vault.lines.count == 1, "\(vault.lines)")
        #expect(vault.lines.first?.contains("\"data\":{\"amount\":7,\"owner\":\"O=Alice\"}") == true, "\(vault.lines)")
        // One page at a time: the next page's cursor is printed beside the states (there was no way to page on).
        #expect(try await hawser("flow", "start", "IssueTokens", "{\"owner\":\"O=Alice\",\"amount\":3}", "--wait").status == 0)
        let first = try await hawser("vault", "query", "--owner", "O=Alice", "--limit", "1")
        let cursor = try #require(first.lines.last.flatMap { $0.hasPrefix("next page: --after ") ? String($0.dropFirst(19)) : nil }, "\(first.lines)")
        #expect(first.status == 0 && first.lines.count == 2 && first.lines[0].contains("\"amount\":7"), "\(first.lines)")
        let second = try await hawser("vault", "query", "--owner", "O=Alice", "--limit", "1", "--after", cursor)
        #expect(second.status == 0 && second.lines.first?.contains("\"amount\":3") == true, "\(second.lines)")
        #expect(await node.terminate() == 0)
    }

    /// The README's tour: the key printed by `hawser notary identity` is the one `request sign`
    /// takes, also when it holds a `/` (which the JSON of `/v1/identity` escapes as `\/`).
    /// `notary init` checks its options before it writes: each refusal is a usage error (64) that
    /// names what to give and leaves no directory (it left an empty one, and without any party
    /// option it failed as a configuration error).
    @Test func notaryInitRefusesBeforeItWrites() async throws {
        let dir = try TemporaryDirectory()
        for (options, expected) in [([String](), "nobody could notarise: give --authorise NAME=BASE64KEY, --demo-party or --accept-any-party"),
                                    (["--demo-party", "--port", "70000"], "--port must be 0...65535"),
                                    (["--demo-party", "--name", " "], "--name must not be empty or blank"),
                                    (["--demo-party", "--port", "9000", "--grpc-port", "9000"], "--grpc-port must differ from --port (9000)"),
                                    (["--authorise", " =" + SigningKey().publicKey.base64], "--authorise must not be empty or blank"),
                                    (["--authorise", "foo"], "--authorise wants NAME=BASE64KEY")] {
            let refused = try await HawserProcess.run(["notary", "init", "--dir", dir.path + "/n"] + options)
            #expect(refused.status == 64 && refused.output.contains(expected) && refused.output.contains("Usage: hawser notary init"),
                    "\(options): \(refused.output)")
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/n"), "\(options)")
        }
        let made = try await HawserProcess.run(["notary", "init", "--dir", dir.path + "/n", "--accept-any-party"])
        #expect(made.status == 0 && FileManager.default.fileExists(atPath: dir.path + "/n/hawser.json"), "\(made.output)")
        let again = try await HawserProcess.run(["notary", "init", "--dir", dir.path + "/n", "--accept-any-party"])
        #expect(again.status == 64 && again.output.contains("hawser.json already exists"), "\(again.output)")
    }

    /// Arguments that could only make something useless are usage errors (64) that write nothing.
    @Test func blankNamesPasswordsAndOtherURLsAreUsageErrors() async throws {
        let dir = try TemporaryDirectory()
        let party = try await HawserProcess.run(["party", "new", "--name", " ", "--out", dir.path + "/p.key"])
        #expect(party.status == 64 && party.output.contains("--name must not be empty or blank"), "\(party.output)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/p.key"))
        let hash = try await HawserProcess.run(["node", "hash-password", ""])
        #expect(hash.status == 64 && hash.output.contains("the password must not be empty"), "\(hash.output)")
        let verify = try await HawserProcess.run(["admin", "verify-cluster", "--url", "http://127.0.0.1:1", "--url", "ftp://x"])
        #expect(verify.status == 64 && verify.output.contains("--url `ftp://x` is not an http:// or https:// base URL"), "\(verify.output)")
    }

    @Test func notaryIdentityPrintsTheKeyThatRequestSignTakes() async throws {
        let seed = try #require((UInt8(0)...255).first { SigningKey(seed: [UInt8](repeating: $0, count: 32))!.publicKey.base64.contains("/") })
        let key = SigningKey(seed: [UInt8](repeating: seed, count: 32))!
        let dir = try TemporaryDirectory()
        try writeNotaryFiles(in: dir.path)
        try FileManager.default.removeItem(atPath: dir.path + "/notary.key")
        try KeyFile(name: "O=Test Notary", key: key).save(dir.path + "/notary.key")
        try KeyFile(name: "O=Alice", key: alice).save(dir.path + "/alice.key")

        let offline = try await HawserProcess.runToExit(["notary", "identity", "--config", dir.path + "/hawser.json"])
        #expect(offline.status == 0 && offline.output == key.publicKey.base64 + "\n", "\(offline.output)")
        let (notary, port) = try await HawserProcess.notary(config: dir.path + "/hawser.json")
        let online = try await HawserProcess.runToExit(["notary", "identity", "--url", "http://127.0.0.1:\(port)", "--json"])
        #expect(online.output == "{\"name\":\"O=Hawser Notary, L=London, C=GB\",\"publicKey\":\"\(key.publicKey.base64)\"}\n",
                "\(online.output)")
        #expect(await notary.terminate() == 0)

        let signed = try await HawserProcess.runToExit(["request", "sign", "--key", dir.path + "/alice.key",
                                                        "--notary-key", key.publicKey.base64, "--input", String(repeating: "1", count: 64) + ":0"])
        #expect(signed.status == 0 && signed.output.hasPrefix("{"), "\(signed.output)")
        // A request every notary refuses is not printed: it was, with exit 0 (found by a client
        // written from the docs). Refused as a usage error, as a bad option value is.
        let empty = try await HawserProcess.runToExit(["request", "sign", "--key", dir.path + "/alice.key",
                                                       "--notary-key", key.publicKey.base64])
        #expect(empty.status == 64 && empty.output.contains("nothing_to_notarise") && !empty.output.contains("{"), "\(empty.output)")
        let bad = try await HawserProcess.runToExit(["request", "sign", "--key", dir.path + "/alice.key",
                                                     "--notary-key", key.publicKey.base64, "--input", "bad"])
        #expect(bad.status == 64 && bad.output.contains("invalid_state_ref"), "\(bad.output)")
    }

    /// `hawser admin --node-config node.json` takes the election from the node's `ha.election`
    /// (its store, file names relative to the file, name and timings), so an operator need not
    /// type the store's address (a password in it) and the election's name again.
    @Test func adminCommandsTakeTheElectionFromANodesConfiguration() async throws {
        let dir = try TemporaryDirectory()
        var settings = ElectionSettings()
        settings.sqlite = "lease.sqlite"
        settings.election = "from-the-file"
        // A lease no busy moment of the suite's can lapse before `admin status` reads it.
        settings.leaseMs = 60_000
        try writeRemoteNodeFiles(in: dir.path, urls: ["http://127.0.0.1:1"]) { configuration in
            configuration.ha.mode = .hotWarm
            configuration.ha.id = "A"
            configuration.ha.advertise = ["http://127.0.0.1:1"]
            configuration.ha.election = settings
        }
        let standing = try settings.resolved(against: dir.path).makeElection(candidate: Candidate(id: "A"), health: HealthChecks(),
                                                                             logger: Logger(label: "test"))
        let task = Task { try await standing.run() }
        defer { task.cancel() }
        try await eventually("A leading") { standing.status.role.epoch != nil }

        let status = try await HawserProcess.run(["admin", "status", "--node-config", dir.path + "/node.json"])
        #expect(status.status == 0 && status.output.contains(#""leader" : "A""#), "\(status.output)")
        // Another election of the node's store (its `.outbox`, a partition's): --election wins
        // (found from outside: it was ignored, and `prefer` acted on the file's election).
        let other = try await HawserProcess.run(["admin", "status", "--node-config", dir.path + "/node.json", "--election", "from-the-file.outbox"])
        #expect(other.status == 0 && !other.output.contains(#""leader""#)
                && other.output.contains("nothing has ever stood in election from-the-file.outbox"), "\(other.output)")
        let both = try await HawserProcess.run(["admin", "status", "--node-config", dir.path + "/node.json", "--sqlite", dir.path + "/other.sqlite"])
        #expect(both.status != 0 && both.output.contains("give none of --zookeeper"), "\(both.output)")
        // A timing given beside the file was replaced by the file's without a word.
        let timed = try await HawserProcess.run(["admin", "status", "--node-config", dir.path + "/node.json", "--lease-ms", "100", "--renew-ms", "5000"])
        #expect(timed.status == 64 && timed.output.contains("give none of --lease-ms, --renew-ms with it"), "\(timed.output)")
        // A hot-hot node's file shows its partitions (found from outside: the node's election
        // alone showed nothing, as if nothing ran).
        let hotHot = try TemporaryDirectory()
        try writeRemoteNodeFiles(in: hotHot.path, urls: ["http://127.0.0.1:1"]) { configuration in
            configuration.ha.mode = .hotHot
            configuration.ha.id = "A"
            configuration.ha.advertise = ["http://127.0.0.1:1"]
            configuration.ha.partitions = 2
            configuration.ha.election = settings
        }
        let partitions = try await HawserProcess.run(["admin", "status", "--node-config", hotHot.path + "/node.json"])
        #expect(partitions.status == 0 && partitions.output.contains(#""partition" : 1"#) && !partitions.output.contains(#""partition" : 2"#),
                "\(partitions.output)")
        let alone = try TemporaryDirectory()
        try writeNodeFiles(in: alone.path)
        let single = try await HawserProcess.run(["admin", "status", "--node-config", alone.path + "/node.json"])
        #expect(single.status != 0 && single.output.contains("has no ha.election: its node runs alone (ha.mode single)"), "\(single.output)")
        // A hot-cold node's file is refused too, and not said to run alone (found from outside).
        let hotCold = try TemporaryDirectory()
        try writeRemoteNodeFiles(in: hotCold.path, urls: ["http://127.0.0.1:1"]) { $0.ha.mode = .hotCold }
        let watched = try await HawserProcess.run(["admin", "status", "--node-config", hotCold.path + "/node.json"])
        #expect(watched.status == 64 && watched.output.contains("its watchdog stands in the election (ha.mode hot-cold)"), "\(watched.output)")
    }
}
