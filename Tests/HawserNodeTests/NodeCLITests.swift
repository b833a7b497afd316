import ArgumentParser
import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import Testing
@testable import hawser

/// What a node user expects of the CLI (issue 14, items 11 and 12): the node's address set once,
/// flows listed, killed and resumed, the vault queried, the notary's key printed, and errors that
/// speak of what was typed.
@Suite struct NodeCLITests {
    /// The README's tour: the key printed by `hawser notary identity` is the one `request sign`
    /// takes, also when it holds a `/` (which the JSON of `/v1/identity` escapes as `\/`).
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
        #expect(notary.terminate() == 0)

        let signed = try await HawserProcess.runToExit(["request", "sign", "--key", dir.path + "/alice.key",
                                                        "--notary-key", key.publicKey.base64, "--input", String(repeating: "1", count: 64) + ":0"])
        #expect(signed.status == 0 && signed.output.hasPrefix("{"), "\(signed.output)")
    }
}
