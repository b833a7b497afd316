import AsyncHTTPClient
import FlowNotaries
import Flows
import Foundation
import HawserClient
import HawserCore
import HawserNode
import HawserTestSupport
import HawserWire
import Hummingbird
import HummingbirdTesting
import TokenSample
import Vault
import Testing

/// A node whose flows notarise through a remote notary: a `hawser notary run` child process, a
/// notary that signs with another key, the JetStream cluster.
@Suite(.serialized) struct RemoteNotaryTests {
    /// `hawser node init --notary-url ... --notary-key ...` makes a node without a notary of its
    /// own; `hawser node run` then completes the token flows through the standalone notary.
    @Test(.timeLimit(.minutes(2))) func aNodeProcessNotarisesThroughAStandaloneNotary() async throws {
        let notary = try await StandaloneNotary.start()
        let dir = try TemporaryDirectory()
        // Keys the notary already authorises.
        try KeyFile(name: "O=Alice", key: alice).save(dir.path + "/alice.key")
        try KeyFile(name: "O=Bob", key: bob).save(dir.path + "/bob.key")
        let initialised = try await ChildProcess.run(HawserProcess.binary, [
            "node", "init", "--dir", "node", "--port", "0", "--party-key", "alice.key", "--party-key", "bob.key",
            "--user", "ops", "--password", "secret", "--notary-url", notary.url, "--notary-key", notaryKey.publicKey.base64,
            "--notary-name", "O=Notary",
        ], in: dir.path, scratch: dir.path)
        #expect(initialised.status == 0, "\(initialised.output)")
        #expect(initialised.output.contains("O=Bob=\(bob.publicKey.base64)"), "init names the parties to authorise: \(initialised.output)")
        let node = dir.path + "/node"
        #expect(!FileManager.default.fileExists(atPath: node + "/notary.key"))

        let (process, port) = try await HawserProcess.node(config: node + "/node.json")
        let client = NodeClient(urls: ["http://127.0.0.1:\(port)"], username: "ops", password: "secret")
        let issued = try await client.run("IssueTokens", arguments: Array(#"{"owner":"O=Alice","amount":50}"#.utf8))
        #expect(issued.status == "completed", "\(issued.error ?? "")")
        let moved = try await client.run("MoveTokens", arguments: Array(#"{"owner":"O=Alice","newOwner":"O=Bob","amount":20}"#.utf8))
        #expect(moved.status == "completed", "\(moved.error ?? "")")
        let ready = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/health/ready"), timeout: .seconds(10))
        #expect(ready.status == .ok)
        try await client.shutdown()
        #expect(await process.terminate() == 0)

        // The node kept nothing of a notary; the notary recorded both transactions as committed.
        for file in ["log.sqlite", "notary.sqlite"] { #expect(!FileManager.default.fileExists(atPath: node + "/data/" + file)) }
        let notaryClient = try NotaryClient(urls: [notary.url], notaryKey: notaryKey.publicKey)
        for flow in [issued, moved] {
            let result = try JSONSerialization.jsonObject(with: flow.result ?? Data()) as? [String: Any]
            let txId = try #require(SecureHash(hex: result?["txId"] as? String ?? ""))
            #expect(try await notaryClient.answer(for: txId).outcome == .committed)
        }
        try await notaryClient.shutdown()
    }

    /// The first URL is a closed port: every notarisation fails over to the second.
    @Test(.timeLimit(.minutes(2))) func flowsFailOverPastADeadNotaryAddress() async throws {
        let notary = try await StandaloneNotary.start()
        try await withRemoteNode(urls: [try closedURL(), notary.url]) { client, parts, dir in
            for _ in 0..<5 {
                #expect(try await parts.engine.run(IssueTokens(owner: "O=Alice", amount: 10)).status == .completed)
            }
            let move = try await parts.engine.run(MoveTokens(owner: "O=Alice", newOwner: "O=Bob", amount: 25))
            #expect(move.status == .completed, "\(move.error ?? "")")
            #expect(try await balances(parts) == ["O=Alice": 25, "O=Bob": 25])
            #expect(parts.notary == nil && parts.notaryStore == nil)
            #expect(!FileManager.default.fileExists(atPath: dir + "/data/log.sqlite"))
            try await client.execute(uri: "/health/ready", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/node", method: .get, headers: ops) { (response: TestResponse) async throws in
                #expect(try decode(NodeIdentityJSON.self, response.body).notary == "O=Notary")
            }
        }
    }

    /// An answer signed by a key other than the configured one is never accepted, however well
    /// formed: the flow records nothing and waits in the hospital to ask again (the real notary
    /// may have committed).
    @Test(.timeLimit(.minutes(1))) func anAnswerSignedByAnotherKeyIsRefused() async throws {
        let impostor = SigningKey(seed: [UInt8](repeating: 66, count: 32))!
        try await withImpostorNotary(signingWith: impostor) { url in
            try await withRemoteNode(urls: [url]) { _, parts, _ in
                let id = try await parts.engine.start(IssueTokens(owner: "O=Alice", amount: 10)).id
                try await parts.engine.waitUntilHospitalised(id)
                let flow = try #require(try await parts.engine.record(id))
                #expect(flow.status == .hospitalised && flow.retryAt != nil, "to retry: \(flow.status) \(flow.error ?? "")")
                #expect(flow.error?.contains("is invalid and was not accepted") == true, "\(flow.error ?? "")")
                #expect(try await parts.database.vault.query(VaultQuery(type: Token.stateType, consumption: .all)).isEmpty)
            }
        }
    }

    /// A real notary with another key refuses the node's requests (they are signed for the
    /// configured key): a refusal that asking again cannot mend, so the flow is parked for an
    /// operator and records nothing.
    @Test(.timeLimit(.minutes(1))) func aNotaryWithAnotherKeyRefusesAndTheFlowIsParked() async throws {
        let other = try await StandaloneNotary.start(key: SigningKey(seed: [UInt8](repeating: 67, count: 32))!)
        try await withRemoteNode(urls: [other.url]) { _, parts, _ in
            let flow = try await parts.engine.run(IssueTokens(owner: "O=Alice", amount: 10))
            #expect(flow.status == .hospitalised && flow.retryAt == nil, "parked: \(flow.status) \(flow.error ?? "")")
            #expect(flow.error?.contains("invalid_signature") == true, "\(flow.error ?? "")")
            #expect(try await parts.database.vault.query(VaultQuery(type: Token.stateType, consumption: .all)).isEmpty)
        }
    }
}

/// Runs an HTTP server that answers every `POST /v1/notarise` with "committed", well formed and
/// signed by `key`, for the duration of `body`, which gets its URL.
func withImpostorNotary(signingWith key: SigningKey, _ body: @Sendable (String) async throws -> Void) async throws {
    let router = Router()
    router.post("/v1/notarise") { request, _ -> Response in
        let bytes = try await request.body.collect(upTo: 1 << 20)
        let notarisation = try NotarisationRequest(proto: Hawser_V1_NotarisationRequest(serializedBytes: Array(buffer: bytes)))
        let tree = MerkleTree(leaves: [NotarisationAnswer.leafHash(txId: notarisation.txId, outcome: .committed)])
        let answer = NotarisationAnswer(txId: notarisation.txId, outcome: .committed, proof: tree.proof(forLeaf: 0),
                                        signature: key.sign(NotarisationAnswer.batchSigningPayload(root: tree.root)))
        return Response(status: .ok, headers: [.contentType: "application/x-protobuf"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try answer.proto.serializedBytes() as [UInt8])))
    }
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: quietLogger)
    try await app.test(.live) { client in
        let port = try #require(client.port)
        try await body("http://127.0.0.1:\(port)")
    }
}
