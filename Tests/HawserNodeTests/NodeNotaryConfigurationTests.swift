import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import Testing

/// The node configuration's `notary` section: embedded by default (the top-level `notaryName` and
/// `notaryKeyFile` still name it), remote with URLs and a pinned key, every mistake named at start-up.
@Suite(.timeLimit(.minutes(10))) struct NodeNotaryConfigurationTests {
    /// The node files of `writeNodeFiles` with `edit` applied to node.json's JSON object.
    func problems(_ edit: (inout [String: Any]) -> Void) throws -> [String] {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let path = dir.path + "/node.json"
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        do { _ = try NodeConfiguration.load(path) } catch let error as ConfigurationError { return error.problems }
        return []
    }

    let key = notaryKey.publicKey.base64

    @Test func embeddedIsTheDefaultAndTheTopLevelNamesStillWork() throws {
        let dir = try TemporaryDirectory()
        try writeNodeFiles(in: dir.path)
        let c = try NodeConfiguration.load(dir.path + "/node.json")
        #expect(c.notary.kind == .embedded && c.notaryName == "O=Notary")
        #expect(try problems { $0["notary"] = ["kind": "embedded"] }.isEmpty)
    }

    @Test func aRemoteSectionLoadsAndSavesBackEqual() throws {
        let dir = try TemporaryDirectory()
        try writeRemoteNodeFiles(in: dir.path, urls: ["http://10.0.0.1:8080/", "https://notary.example:8443"]) {
            $0.notary.attemptTimeoutMillis = 5_000
        }
        let c = try NodeConfiguration.load(dir.path + "/node.json")
        #expect(c.notary.kind == .remote && c.notary.urls?.count == 2 && c.notary.attemptTimeoutMillis == 5_000)
        #expect(c.notaryName == nil && c.notaryKeyFile == nil)
        try c.save(dir.path + "/again.json")
        #expect(try NodeConfiguration.load(dir.path + "/again.json") == c)
        let text = try String(contentsOfFile: dir.path + "/again.json", encoding: .utf8)
        #expect(!text.contains("notaryKeyFile"), "a remote node's file names no notary key file")
    }

    @Test func aRemoteNotaryNeedsURLsAndAValidKey() throws {
        let found = try problems { $0["notary"] = ["kind": "remote"] }
        #expect(found.contains { $0.contains("notary.urls must list") }, "\(found)")
        #expect(found.contains { $0.contains("notary.publicKey is required") }, "\(found)")
        #expect(found.contains { $0.contains("notaryName and notaryKeyFile configure the embedded notary") }, "\(found)")

        let more = try problems {
            $0["notaryName"] = nil
            $0["notaryKeyFile"] = nil
            $0["notary"] = ["kind": "remote", "urls": ["ftp://x", "http://a:1", "http://a:1/"], "publicKey": "AAAA", "name": "",
                            "timeoutMillis": 1_000, "attemptTimeoutMillis": 2_000, "maxAttempts": 0, "retries": 3]
        }
        for expected in ["`ftp://x` is not an http(s) base URL", "notary.urls must not name a URL twice", "notary.name must not be empty",
                         "notary.publicKey is not a base64 Ed25519 public key", "notary.attemptTimeoutMillis must not exceed notary.timeoutMillis",
                         "notary.maxAttempts must be 1...1000", "unknown option `notary.retries`"] {
            #expect(more.contains { $0.contains(expected) }, "missing: \(expected) in \(more)")
        }
        // Against the default whole-call bound too (60 s): it was let through (found from outside).
        let pastDefault = try problems {
            $0["notaryName"] = nil
            $0["notaryKeyFile"] = nil
            $0["notary"] = ["kind": "remote", "urls": ["http://a:1"], "publicKey": notaryKey.publicKey.base64, "attemptTimeoutMillis": 70_000]
        }
        #expect(pastDefault.contains { $0.contains("notary.attemptTimeoutMillis must not exceed notary.timeoutMillis (60000 ms") }, "\(pastDefault)")
        // A key of small order (an all-zero placeholder) is refused: anyone could sign answers for it.
        let weak = try problems {
            $0["notaryName"] = nil
            $0["notaryKeyFile"] = nil
            $0["notary"] = ["kind": "remote", "urls": ["http://a:1"], "publicKey": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]
        }
        #expect(weak.contains("notary.publicKey is a key of small order: answers could be signed for it without its private key"), "\(weak)")
        // A permission that does not exist is named with those that do (it was Swift's "Cannot
        // initialize RPCPermission from invalid String value", found from outside).
        let permission = try problems {
            var users = $0["rpcUsers"] as! [[String: Any]]
            users[0]["permissions"] = ["bogus"]
            $0["rpcUsers"] = users
        }
        #expect(permission.contains { $0.contains("`rpcUsers[0].permissions[0]`: `bogus` is not a permission: one of startFlow, readFlows") },
                "\(permission)")
    }

    /// gRPC addresses are accepted, but not mixed with HTTP ones: one client speaks one protocol.
    @Test func aRemoteNotarysURLsAreAllHTTPOrAllGRPC() throws {
        let remote = { (urls: [String]) in
            try self.problems {
                $0["notaryName"] = nil
                $0["notaryKeyFile"] = nil
                $0["notary"] = ["kind": "remote", "urls": urls, "publicKey": self.key]
            }.filter { $0.hasPrefix("notary.urls") }
        }
        #expect(try remote(["grpc://10.0.0.1:9090", "grpc://10.0.0.2:9090"]) == [])
        #expect(try remote(["grpc://10.0.0.1:9090", "http://10.0.0.2:8080"]).first?.contains("not both") == true)
    }

    @Test func remoteOptionsAreRefusedForTheEmbeddedNotary() throws {
        let found = try problems { $0["notary"] = ["urls": ["http://10.0.0.1:8080"], "publicKey": key] }
        #expect(found.contains { $0.contains("apply only to notary.kind \"remote\"") }, "\(found)")
        let kind = try problems { $0["notary"] = ["kind": "cluster"] }
        #expect(kind.contains { $0.contains("notary.kind must be \"embedded\" or \"remote\", not \"cluster\"") }, "\(kind)")
    }

    /// `hawser node init` with a remote notary (as `Node.initialise` does it): no notary key, the
    /// parties to authorise named, and a file that loads.
    @Test func initialisingARemoteNodeWritesNoNotaryKey() throws {
        let dir = try TemporaryDirectory()
        try KeyFile(name: "O=Alice", key: alice).save(dir.path + "/alice.key")
        let lines = try Node.initialise(directory: dir.path + "/node", port: 0, parties: ["O=Carol"], partyKeyFiles: [dir.path + "/alice.key"],
                                        username: "ops", password: "secret",
                                        notary: .remote(urls: ["http://127.0.0.1:8080"], publicKey: key))
        #expect(lines.contains("O=Alice=\(alice.publicKey.base64)"), "\(lines)")
        #expect(lines.contains("O=Carol="), "\(lines)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/node/notary.key"))
        let c = try NodeConfiguration.load(dir.path + "/node/node.json")
        #expect(c.notary == .remote(urls: ["http://127.0.0.1:8080"], publicKey: key))
        #expect(c.parties.map(\.name) == ["O=Alice", "O=Carol"] && c.parties[0].keyFile == dir.path + "/alice.key")

        // A refused call writes nothing.
        #expect(throws: ConfigurationError.self) {
            try Node.initialise(directory: dir.path + "/bad", port: 0, parties: ["O=Dan"], username: "ops", password: "secret",
                                notary: .remote(urls: [], publicKey: key))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/bad"))
    }
}
