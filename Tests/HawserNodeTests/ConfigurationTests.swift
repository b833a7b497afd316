import Foundation
import HawserNode
import HawserTestSupport
import Testing

@Suite(.timeLimit(.minutes(10))) struct ConfigurationTests {
    func load(_ json: String) throws -> NotaryConfiguration {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/hawser.json"
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return try NotaryConfiguration.load(path)
    }

    func problems(_ json: String) -> [String] {
        do { _ = try load(json); return [] } catch let error as ConfigurationError { return error.problems } catch { return ["\(error)"] }
    }

    @Test func absentFieldsTakeTheirDefaults() throws {
        let c = try load(#"{"acceptAnyParty": true, "limits": {"maxStateRefs": 5}, "listen": {"port": 9000}}"#)
        #expect(c.limits.maxStateRefs == 5)
        #expect(c.limits.maxBatchRequests == NotaryConfiguration.Limits().maxBatchRequests)
        #expect(c.listen.port == 9000 && c.listen.host == "127.0.0.1")
        #expect(c.name == NotaryConfiguration().name)
        #expect(c.parties == nil, "an open notary has no party list")
    }

    @Test func savedConfigurationsLoadBackEqual() throws {
        let dir = try TemporaryDirectory()
        var c = NotaryConfiguration()
        c.authorisedParties = [.init(name: "O=Alice", publicKey: alice.publicKey.base64)]
        c.limits.requestTimeoutMillis = 1234
        try c.save(dir.path + "/hawser.json")
        #expect(try NotaryConfiguration.load(dir.path + "/hawser.json") == c)
    }

    @Test func everyProblemIsReportedAtOnce() {
        let found = problems(#"""
            {"nmae": "typo", "listen": {"port": 70000, "hots": "x"}, "authorisedParties": [{"name": "A", "publicKey": "AAAA", "x": 1},
             {"name": "Z", "publicKey": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}],
             "limits": {"maxStateRefs": 0, "requestTimeoutMillis": -1, "maxBodyBytes": 10, "extra": 1,
                        "maxBatchRequests": 50, "maxRequestsPerLogEntry": 20}}
            """#)
        for expected in ["unknown option `nmae`", "unknown option `listen.hots`", "unknown option `limits.extra`",
                         "unknown option `authorisedParties[0].x`",
                         "listen.port must be 0...65535", "the key of `A` is not a base64 Ed25519 public key",
                         "the key of `Z` is of small order",
                         "limits.maxStateRefs must be at least 1", "limits.requestTimeoutMillis must be 1...3600000 (an hour)",
                         "limits.maxBodyBytes must be at least 1024",
                         "limits.maxRequestsPerLogEntry must be at least limits.maxBatchRequests"] {
            #expect(found.contains { $0.contains(expected) }, "missing: \(expected) in \(found)")
        }
    }

    /// Both servers read the `http` section alike and refuse it unknown options or out-of-range
    /// timeouts at start-up.
    @Test func httpTimeoutsAreValidatedInBothConfigurations() throws {
        let c = try load(#"{"acceptAnyParty": true, "http": {"idleTimeoutMillis": 5000}}"#)
        #expect(c.http.idleTimeoutMillis == 5000 && c.http.headerTimeoutMillis == HTTPSettings().headerTimeoutMillis)
        let found = problems(#"{"acceptAnyParty": true, "http": {"headerTimeoutMillis": 0, "bodyTimeoutMillis": 3600001, "idle": 1}}"#)
        for expected in ["unknown option `http.idle`", "http.headerTimeoutMillis must be 100...3600000",
                         "http.bodyTimeoutMillis must be 100...3600000"] {
            #expect(found.contains { $0.contains(expected) }, "missing: \(expected) in \(found)")
        }

        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        var node = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path + "/node.json"))) as! [String: Any]
        node["http"] = ["idleTimeoutMillis": 99, "slow": true]
        // Unknown fields in an array's elements too (they were taken before; rpcUsers' only were refused).
        var parties = node["parties"] as! [[String: Any]]
        parties[0]["foo"] = 1
        node["parties"] = parties
        try JSONSerialization.data(withJSONObject: node).write(to: URL(fileURLWithPath: dir.path + "/node.json"))
        #expect(throws: ConfigurationError.self) { try NodeConfiguration.load(dir.path + "/node.json") }
        do { _ = try NodeConfiguration.load(dir.path + "/node.json") } catch let error as ConfigurationError {
            #expect(error.problems.contains("unknown option `http.slow`"), "\(error.problems)")
            #expect(error.problems.contains("unknown option `parties[0].foo`"), "\(error.problems)")
            #expect(error.problems.contains { $0.contains("http.idleTimeoutMillis must be 100...3600000") }, "\(error.problems)")
        }
    }

    /// A server whose budget for bodies in flight is smaller than its largest body could never
    /// take that body: both configurations refuse it at start-up.
    @Test func theBodyBudgetMustHoldTheLargestBody() throws {
        #expect(problems(#"{"acceptAnyParty": true, "limits": {"maxBodyBytes": 4096, "maxBodyBytesInFlight": 4095}}"#)
            .contains("limits.maxBodyBytesInFlight must be at least limits.maxBodyBytes: a body of the largest size must fit"))
        #expect(try load(#"{"acceptAnyParty": true, "limits": {"maxBodyBytes": 4096, "maxBodyBytesInFlight": 4096}}"#).limits.maxBodyBytesInFlight == 4096)
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        var node = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path + "/node.json"))) as! [String: Any]
        node["maxBodyBytesInFlight"] = 1000
        try JSONSerialization.data(withJSONObject: node).write(to: URL(fileURLWithPath: dir.path + "/node.json"))
        let error = #expect(throws: ConfigurationError.self) { try NodeConfiguration.load(dir.path + "/node.json") }
        #expect(error?.problems == ["maxBodyBytesInFlight must be at least maxBodyBytes: a body of the largest size must fit"])
    }

    @Test func refusesANotaryNobodyCouldUse() {
        #expect(problems("{}").contains { $0.contains("nobody could notarise") })
    }

    @Test func refusesWrongTypesAndBadJSON() {
        #expect(problems(#"{"acceptAnyParty": "yes"}"#).contains { $0.contains("acceptAnyParty") })
        #expect(problems("{").contains { $0.contains("not valid JSON") })
        // A member named twice is refused, not taken first-wins, with where it was found.
        #expect(problems(#"{"acceptAnyParty": true, "name": "O=A", "name": "O=B"}"#)
            .contains { $0.contains("is not valid JSON: the object names member `name` twice at byte") })
        // Valid JSON whose number does not fit says so (it was "not valid JSON"), and where.
        #expect(problems(#"{"acceptAnyParty": true, "listen": {"port": 99999999999999999999}}"#)
            .contains { $0.contains("a number does not fit") && $0.contains("(not whole numbers: `listen.port` is 99999999999999999999)") })
        #expect(problems(#"{"acceptAnyParty": true, "ha": {"mode": "hot-warm", "partitions": 8.5}}"#)
            .contains { $0.contains("(not whole numbers: `ha.partitions` is 8.5)") })
        // A null is no value: it was taken for a field left out, and the file silently got the default.
        #expect(problems(#"{"acceptAnyParty": true, "listen": {"port": null}, "limits": null}"#)
            == ["`limits` is null: leave a field out to take its default", "`listen.port` is null: leave a field out to take its default"])
        #expect(problems(#"{"acceptAnyParty": null, "authorisedParties": [null]}"#)
            .starts(with: ["`acceptAnyParty` is null: leave a field out to take its default", "`authorisedParties[0]` is null: leave a field out to take its default"]))
        #expect(problems("[]").contains { $0.hasSuffix("hawser.json: the top level must be an object") }, "\(problems("[]"))")
    }

    /// Files that cannot be read say why in words (they named "NSCocoaErrorDomain error 256").
    @Test func unreadableFilesSayWhy() throws {
        let dir = try TemporaryDirectory()
        let directory = #expect(throws: ConfigurationError.self) { try NotaryConfiguration.load(dir.path) }
        #expect(directory?.problems == ["cannot read configuration file \(dir.path): it is a directory"])
        let missing = #expect(throws: ConfigurationError.self) { try KeyFile.load(dir.path + "/none.key") }
        #expect(missing?.problems == ["cannot read key file \(dir.path)/none.key: there is no such file"])
        // Named by the option that names the file, when there is one (found from outside: a
        // notary's missing `keyFile` was told by its path alone).
        let named = #expect(throws: ConfigurationError.self) { try KeyFile.load(dir.path + "/none.key", option: "keyFile") }
        #expect(named?.problems == ["keyFile: cannot read key file \(dir.path)/none.key: there is no such file"])
        #expect(FileManager.default.createFile(atPath: dir.path + "/file", contents: Data()))
        #expect(throws: DataDirectoryInUse.self) { try DataDirectoryLock(directory: dir.path + "/file") }
        do { _ = try DataDirectoryLock(directory: dir.path + "/file") } catch {
            #expect("\(error)".contains("is a file, not a directory"), "\(error)")
        }
    }

    /// A wrong value in either file is named by its place in the JSON and what it must be, not by
    /// the decoder's internals (issue 14, item 11).
    @Test func wrongTypesAreReportedInWordsAboutTheFile() throws {
        #expect(problems(#"{"acceptAnyParty": true, "listen": {"port": "80"}}"#).contains { $0.hasSuffix("hawser.json: `listen.port` must be a whole number") },
                "\(problems(#"{"acceptAnyParty": true, "listen": {"port": "80"}}"#))")
        #expect(problems(#"{"authorisedParties": [{"name": "A"}]}"#).contains { $0.hasSuffix("`authorisedParties[0].publicKey` is missing") })
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let path = dir.path + "/node.json"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"maxWritesPerCommit\" : 1000", with: "\"maxWritesPerCommit\" : \"many\"")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try NodeConfiguration.load(path)
            Issue.record("a string for maxWritesPerCommit was accepted")
        } catch let error as ConfigurationError {
            #expect(error.problems == ["\(path): `maxWritesPerCommit` must be a whole number"])
        }
    }
}
