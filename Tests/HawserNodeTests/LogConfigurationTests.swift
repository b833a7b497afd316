import Foundation
import HawserNode
import HawserTestSupport
import Notary
import Testing

/// The `log` section: embedded by default, JetStream settings validated at start-up.
@Suite(.timeLimit(.minutes(10))) struct LogConfigurationTests {
    func load(_ json: String) throws -> NotaryConfiguration {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/hawser.json"
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return try NotaryConfiguration.load(path)
    }

    func problems(_ json: String) -> [String] {
        do { _ = try load(json); return [] } catch let error as ConfigurationError { return error.problems } catch { return ["\(error)"] }
    }

    @Test func theLogIsEmbeddedByDefault() throws {
        let c = try load(#"{"acceptAnyParty": true}"#)
        #expect(c.log.kind == .embedded)
        #expect(c.log == LogConfiguration())
    }

    @Test func aJetStreamLogReadsEverySetting() throws {
        let c = try load(#"""
            {"acceptAnyParty": true, "log": {"kind": "jetstream", "servers": ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"],
             "stream": "NOTARY_A", "replicas": 5, "maxEntries": 1000000, "maxBytes": 1073741824, "maxAgeSeconds": 86400,
             "duplicateWindowSeconds": 60, "appendTimeoutMillis": 5000, "user": "notary", "password": "s3cret",
             "replicaId": "b", "members": ["a", "b", "c"]}}
            """#)
        let j = c.log.jetStream
        #expect(c.log.kind == .jetstream)
        #expect(j.servers == ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"])
        #expect(j.stream == "NOTARY_A" && j.replicas == 5 && j.maxEntries == 1_000_000 && j.maxBytes == 1 << 30)
        #expect(j.maxAge == .seconds(86_400) && j.duplicateWindow == .seconds(60) && j.appendTimeout == .seconds(5))
        #expect(j.user == "notary" && j.password == "s3cret" && j.token == nil)
        #expect(c.log.membership == ReplicaMembership(me: "b", members: ["a", "b", "c"]))
    }

    @Test func everyJetStreamProblemIsReported() {
        let found = problems(#"""
            {"acceptAnyParty": true, "log": {"kind": "jetstream", "stream": "a b", "replicas": 4, "maxBytes": -1,
             "maxAgeSeconds": 30, "appendTimeoutMillis": 5, "token": "t", "user": "u", "colour": "blue",
             "replicaId": "d", "members": ["a", "b.c", "a"]}}
            """#)
        for expected in ["unknown option `log.colour`", "log.servers must name at least one NATS server",
                         "log.stream must be", "log.replicas must be 1, 3 or 5", "log.maxBytes must not be negative",
                         "log.maxAgeSeconds must be at least the duplicate window", "log.appendTimeoutMillis must be 100...3600000 (an hour)",
                         "log.user and log.password go together", "log.token and log.user are alternatives",
                         "log.members: `b.c` is not a replica id", "log.members must not name a replica twice",
                         "log.replicaId `d` is not one of log.members"] {
            #expect(found.contains { $0.contains(expected) }, "missing: \(expected) in \(found)")
        }
        #expect(problems(#"{"acceptAnyParty": true, "log": {"kind": "kafka"}}"#).contains { $0.contains("log.kind") })
        #expect(problems(#"{"acceptAnyParty": true, "log": {"servers": ["nats://x:4222"]}}"#)
            .contains("log.servers, log.user, log.password, log.token, log.replicaId and log.members apply only to log.kind \"jetstream\""))
        #expect(problems(#"{"acceptAnyParty": true, "log": {"kind": "jetstream", "servers": ["nats://x:4222"]}}"#)
            == ["log.members must list the ids of every replica of this notary (the same list on each)",
                "log.replicaId must say which of log.members this replica is"])
        // Server URLs are parsed at start-up (an http:// one failed only once the notary listened).
        let urls = problems(#"{"acceptAnyParty": true, "log": {"kind": "jetstream", "servers": ["http://x:4222", "nats://x:99999", "tls://y"], "replicaId": "a", "members": ["a"]}}"#)
        #expect(urls.filter { $0.hasPrefix("log.servers: ") }.count == 2, "\(urls)")
        #expect(urls.contains { $0.hasPrefix("log.servers: `http://x:4222` is not a server URL") })
        // The stream's settings are checked beside an embedded log too (they were taken unchecked).
        #expect(problems(#"{"acceptAnyParty": true, "log": {"replicas": 2, "maxEntries": -1, "stream": ""}}"#)
            == ["log.stream must be a non-empty name without spaces, `.`, `*` or `>`", "log.replicas must be 1, 3 or 5",
                "log.maxEntries must not be negative (0: unbounded)"])
    }
}
