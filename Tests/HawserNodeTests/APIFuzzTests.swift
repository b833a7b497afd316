import AsyncHTTPClient
import Foundation
import HawserClient
import HawserCore
import HawserNode
import HawserTestSupport
import HawserWire
import Notary
import Testing

/// Schemathesis (an OpenAPI fuzzer; scripts/test.sh installs it) against a real notary and a real
/// node (`hawser notary run`, `hawser node run`), each seeded with data so that the fuzzer reaches
/// real transactions and flows, not only 404s: the documents' examples are seeded, and the ids of
/// the seeded data are mixed into the generated path parameters. Seeded and single-worker
/// (scripts/api-fuzz/schemathesis.toml), so a run repeats exactly. Every check is on; the only
/// cases dropped are those two prose rules make ambiguous (scripts/api-fuzz/hooks.py). For a
/// deeper run, set HAWSER_FUZZ_SEED and HAWSER_FUZZ_EXAMPLES (examples per operation).
@Suite(.timeLimit(.minutes(10))) struct APIFuzzTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    /// The keys of docs/notary-protocol.md section 7, which the notary document's example uses.
    static let vectorNotary = SigningKey(seed: [UInt8](repeating: 2, count: 32))!
    static let vectorRequester = (name: "O=Alice Ltd, L=Zürich, C=CH", key: SigningKey(seed: [UInt8](repeating: 1, count: 32))!)

    @Test func theServersAnswerAsTheirDocumentsSay() async throws {
        let st = try #require(ChildProcess.find("schemathesis"),
                              "schemathesis is not installed (scripts/test.sh installs it: pip install schemathesis)")
        let dir = try TemporaryDirectory()
        let notaryDir = dir.path + "/notary", nodeDir = dir.path + "/node"
        for path in [notaryDir, nodeDir] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }

        try KeyFile(name: "O=Vector Notary", key: Self.vectorNotary).save(notaryDir + "/notary.key")
        var notaryConfiguration = NotaryConfiguration()
        notaryConfiguration.listen.port = 0
        notaryConfiguration.authorisedParties = [.init(name: Self.vectorRequester.name, publicKey: Self.vectorRequester.key.publicKey.base64)]
        try notaryConfiguration.save(notaryDir + "/hawser.json")
        let (notary, notaryPort) = try await HawserProcess.notary(config: notaryDir + "/hawser.json")
        let txIds = try await Self.seedNotary("http://127.0.0.1:\(notaryPort)")

        // A member of a network, so that GET /v1/network has a definition to serve.
        _ = try NodeNetworkTests.memberNodeFiles(in: nodeDir)
        let (node, nodePort) = try await HawserProcess.node(config: nodeDir + "/node.json")
        let (flowIds, clientRequestIds) = try await Self.seedNode("http://127.0.0.1:\(nodePort)")

        let scratch = dir.path
        // The node is fuzzed against the document it serves: docs/node-openapi.json with each
        // flow's argument schema, which says exactly which arguments it accepts.
        let served = scratch + "/node-served-openapi.json"
        try await Self.download("http://127.0.0.1:\(nodePort)/openapi.json", to: served)
        // The snapshot is for holders of the notary's key: the fuzzer is given a credential (valid
        // for 300 s) so that it reaches the route, not only its 401.
        let snapshot = "Authorization: " + SnapshotCredential(notaryKey: Self.vectorNotary).header(at: Int64(Date().timeIntervalSince1970))
        async let notaryRun = Self.fuzz(st, Self.root + "/docs/openapi.json", port: notaryPort, dictionaries: ["tx-ids": ("path.txId", txIds)],
                                        ["-H", snapshot], scratch: scratch)
        // Draining refuses new flows (503): the admin routes are fuzzed apart, after the rest.
        let nodeDictionaries = ["flow-ids": ("path.id", flowIds), "client-request-ids": ("path.clientRequestId", clientRequestIds)]
        let nodeRun = try await Self.fuzz(st, served, port: nodePort, dictionaries: nodeDictionaries,
                                          ["--auth", "ops:secret", "--exclude-path", "/v1/admin/draining"], scratch: scratch)
        let adminRun = try await Self.fuzz(st, served, port: nodePort, dictionaries: [:],
                                           ["--auth", "ops:secret", "--include-path", "/v1/admin/draining",
                                            "--phases", "examples,coverage,fuzzing"], scratch: scratch)  // no links to follow
        for (name, run) in [("notary", try await notaryRun), ("node", nodeRun), ("node admin", adminRun)] {
            // Failures and warnings both fail the run (see the configuration).
            #expect(run.status == 0, "schemathesis against the \(name):\n\(run.output)")
        }
        #expect(await notary.terminate() == 0)
        #expect(await node.terminate() == 0)
    }

    /// Saves what `url` answers to `path`.
    static func download(_ url: String, to path: String) async throws {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let body = await Result {
            let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            return try await response.body.collect(upTo: 1 << 22)
        }
        try await http.shutdown()
        try Data(buffer: try body.get()).write(to: URL(fileURLWithPath: path))
    }

    /// Runs schemathesis against the OpenAPI document at `document` at `port`, with `extra` options.
    static func fuzz(_ st: String, _ document: String, port: Int, dictionaries: [String: (parameter: String, values: [String])],
                     _ extra: [String], scratch: String) async throws -> ChildProcess {
        let config = scratch + "/schemathesis-\(UUID().uuidString).toml"
        try configuration(dictionaries: dictionaries).write(toFile: config, atomically: true, encoding: .utf8)
        let environment = ProcessInfo.processInfo.environment
        let deeper = (environment["HAWSER_FUZZ_SEED"].map { ["--seed", $0] } ?? [])
            + (environment["HAWSER_FUZZ_EXAMPLES"].map { ["--max-examples", $0] } ?? [])
        return try await ChildProcess.run(st, ["--config-file", config, "run", document,
                                               "--url", "http://127.0.0.1:\(port)", "--no-color"] + extra + deeper,
                                          in: root, scratch: scratch)
    }

    /// scripts/api-fuzz/schemathesis.toml, with dictionaries of real ids bound to path parameters
    /// (half of the generated values are drawn from them).
    static func configuration(dictionaries: [String: (parameter: String, values: [String])]) throws -> String {
        var text = try String(contentsOfFile: root + "/scripts/api-fuzz/schemathesis.toml", encoding: .utf8)
        func quoted(_ value: String) -> String { "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        for (name, dictionary) in dictionaries.sorted(by: { $0.key < $1.key }) {
            text += "\n[dictionaries.\(name)]\nvalues = [\(dictionary.values.map(quoted).joined(separator: ", "))]\n"
        }
        if !dictionaries.isEmpty {
            text += "\n[parameters]\n"
            for (name, dictionary) in dictionaries.sorted(by: { $0.key < $1.key }) {
                text += "\(quoted(dictionary.parameter)) = { dictionary = \(quoted(name)), probability = 0.5 }\n"
            }
        }
        return text
    }

    /// Notarises the notary document's example and a few more: committed, conflicting, with a
    /// reference, with a window in the past. Returns their transaction ids.
    static func seedNotary(_ url: String) async throws -> [String] {
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/docs/openapi.json")))
        let example = try #require(((((((document as? [String: Any])?["paths"] as? [String: Any])?["/v1/notarise"] as? [String: Any])?["post"]
            as? [String: Any])?["requestBody"] as? [String: Any])?["content"] as? [String: [String: Any]])?["application/json"]?["example"],
                                   "docs/openapi.json has no example request for POST /v1/notarise")
        let exampleJSON = try JSONSerialization.data(withJSONObject: example)
        var requests = [try JSONDecoder().decode(NotarisationRequestJSON.self, from: exampleJSON).decoded()]
        var ids = Ids(seed: 2026)
        let (spent, referenced) = (ids.ref(), ids.ref())
        func signed(_ inputs: [StateRef], _ references: [StateRef] = [], _ window: TimeWindow? = nil) -> NotarisationRequest {
            .signed(txId: ids.hash(), inputs: inputs, references: references, timeWindow: window,
                    requesterName: vectorRequester.name, key: vectorRequester.key, notary: vectorNotary.publicKey)
        }
        requests += [signed([spent]), signed([spent]), signed([ids.ref()], [referenced]),
                     signed([ids.ref()], [], TimeWindow(from: nil, until: Instant(microsecondsSinceEpoch: 1)))]
        let client = try NotaryClient(urls: [url], notaryKey: vectorNotary.publicKey)
        let seeded = await Result { for request in requests { _ = try await client.notarise(request) } }
        try await client.shutdown()
        try seeded.get()
        return requests.map(\.txId.hex)
    }

    /// Runs the node document's example start and a few more flows: issues, a move, a move that
    /// fails, a killed flow. Returns their flow ids and client request ids.
    static func seedNode(_ url: String) async throws -> (flowIds: [String], clientRequestIds: [String]) {
        let starts: [(flow: String, arguments: String, clientRequestId: String)] = [
            ("IssueTokens", #"{"owner":"O=Alice","amount":10}"#, "issue-1"),
            ("IssueTokens", #"{"owner":"O=Alice","amount":100}"#, "issue-2"),
            ("MoveTokens", #"{"owner":"O=Alice","newOwner":"O=Bob","amount":30}"#, "move-1"),
            ("MoveTokens", #"{"owner":"O=Bob","newOwner":"O=Alice","amount":1000}"#, "move-too-much"),
        ]
        let client = NodeClient(urls: [url], username: "ops", password: "secret")
        let flowIds = await Result {
            var ids = [String]()
            for start in starts {
                ids.append(try await client.run(start.flow, arguments: Array(start.arguments.utf8), clientRequestId: start.clientRequestId).id)
            }
            return ids
        }
        try await client.shutdown()
        return (try flowIds.get(), starts.map(\.clientRequestId))
    }
}

extension Result where Failure == any Error {
    /// The outcome of an async body, so that clean-up runs before an error is rethrown.
    init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
