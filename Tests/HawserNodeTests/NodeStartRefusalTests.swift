import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import Testing

/// What a node's configuration names on disk is read before the node makes anything: a start
/// refused for it leaves no data directory, lock or schema behind.
@Suite(.timeLimit(.minutes(2))) struct NodeStartRefusalTests {
    /// Starts in `dir` the node of `writeNodeFiles` with `edit` applied; returns the refusal's problems.
    func refusal(in dir: String, _ edit: (inout NodeConfiguration) throws -> Void) async throws -> [String] {
        try writeNodeFiles(in: dir)
        var configuration = try NodeConfiguration.load(dir + "/node.json")
        try edit(&configuration)
        do {
            _ = try await Node.application(configuration: configuration, baseDirectory: dir, logger: quietLogger)
        } catch let error as ConfigurationError {
            return error.problems
        }
        Issue.record("the node started")
        return []
    }

    @Test func aMissingNotaryKeyFileIsRefusedBeforeTheDataDirectoryIsMade() async throws {
        let dir = try TemporaryDirectory()
        let problems = try await refusal(in: dir.path) { $0.notaryKeyFile = "nope.key" }
        #expect(problems.contains { $0.contains("nope.key") }, "\(problems)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data"), "no data directory, no node.sqlite")
    }

    @Test func everyPartyNeedsAKeyOfItsOwnNamedForIt() async throws {
        let one = try TemporaryDirectory()
        let shared = try await refusal(in: one.path) {
            $0.parties = [.init(name: "O=Alice", keyFile: "alice.key"), .init(name: "O=Carol", keyFile: "alice.key")]
        }
        #expect(shared.contains { $0.contains("\"O=Alice\" and \"O=Carol\" have one key") }, "\(shared)")
        #expect(shared.contains { $0.contains("alice.key is \"O=Alice\"'s, not \"O=Carol\"'s") }, "\(shared)")

        let dir = try TemporaryDirectory()
        try KeyFile(name: "O=Dave", key: SigningKey()).save(dir.path + "/dave.key")
        let misnamed = try await refusal(in: dir.path) {
            $0.parties = [.init(name: "O=Alice", keyFile: "alice.key"), .init(name: "O=Carol", keyFile: "dave.key")]
        }
        #expect(misnamed == ["parties: the key file dave.key is \"O=Dave\"'s, not \"O=Carol\"'s"])
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/data"))
    }
}
