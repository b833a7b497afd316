import Foundation
import Logging
import Membership
import Testing

struct MembershipWatcherTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func temporaryFile(_ data: Data) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("network-\(UUID().uuidString).json").path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aNodeDoesNotStartWithoutAUsableNetwork() throws {
        #expect(throws: MembershipError.self) { try MembershipWatcher(path: "/nonexistent/network.json", interval: .seconds(1), logger: logger) }
        let path = try temporaryFile(network(version: 0).json)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: MembershipError.self) { try MembershipWatcher(path: path, interval: .seconds(1), logger: logger) }
    }

    /// Edits are taken only as newer valid versions; a bad or older file leaves the one in use.
    @Test func aNewerVersionIsTakenAndABadEditIsNot() throws {
        let path = try temporaryFile(network(version: 1).json)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let watcher = try MembershipWatcher(path: path, interval: .seconds(1), logger: logger)
        #expect(watcher.current.version == 1)

        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: path))
        watcher.check()
        #expect(watcher.current.version == 1)
        try network(version: 1, nodes: 4).json.write(to: URL(fileURLWithPath: path))
        watcher.check()
        #expect(watcher.current.definition.nodes.count == 3, "an edit without a new version is not taken")

        try network(version: 2, nodes: 4).json.write(to: URL(fileURLWithPath: path))
        watcher.check()
        #expect(watcher.current.version == 2)
        #expect(watcher.current.node(named: "O=Node 3, L=London, C=GB") != nil)
        try FileManager.default.removeItem(atPath: path)
        watcher.check()
        #expect(watcher.current.version == 2, "a file gone missing leaves the network in use")
        try network(version: 2, nodes: 4).json.write(to: URL(fileURLWithPath: path))
        watcher.check()
        #expect(watcher.current.version == 2, "the version in use, restored, changes nothing")
        try network(version: 3, nodes: 2).json.write(to: URL(fileURLWithPath: path))
        watcher.check()
        #expect(watcher.current.definition.nodes.count == 2, "and a newer one is still taken after it")
    }

    /// A definition that does not fit the node (`fits` names why) is refused at the start and not
    /// taken later: a node that took one whose entry for its party had a new key went on paying
    /// with the old one, and its payees refused what the notary had signed (found from outside).
    @Test func aDefinitionThatDoesNotFitTheNodeIsNotTaken() throws {
        let path = try temporaryFile(network(version: 1).json)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fits: @Sendable (Membership) -> [String] = { $0.definition.nodes.count == 3 ? [] : ["not three nodes"] }
        let watcher = try MembershipWatcher(path: path, interval: .seconds(1), logger: logger, fits: fits)
        try network(version: 2, nodes: 4).json.write(to: URL(fileURLWithPath: path))
        watcher.check()
        #expect(watcher.current.version == 1)
        #expect(watcher.misfit?.version == 2 && watcher.misfit?.problems == ["not three nodes"], "kept, for the node to stop starting flows")
        try network(version: 1).json.write(to: URL(fileURLWithPath: path))
        watcher.check()
        #expect(watcher.misfit == nil, "the file holds the version in use again")
        try network(version: 2, nodes: 4).json.write(to: URL(fileURLWithPath: path))
        watcher.check()
        #expect(watcher.misfit?.version == 2)
        try network(version: 3, nodes: 3).json.write(to: URL(fileURLWithPath: path))
        watcher.check()
        #expect(watcher.current.version == 3, "a later one that fits is taken")
        #expect(watcher.misfit == nil)
        try network(version: 4, nodes: 2).json.write(to: URL(fileURLWithPath: path))
        #expect(throws: MembershipError.doesNotFit(["not three nodes"])) {
            try MembershipWatcher(path: path, interval: .seconds(1), logger: logger, fits: fits)
        }
    }

    /// The running service picks a new version up by itself.
    @Test(.timeLimit(.minutes(1))) func theRunningWatcherPicksUpANewVersion() async throws {
        let path = try temporaryFile(network(version: 1).json)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let watcher = try MembershipWatcher(path: path, interval: .milliseconds(20), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await watcher.run() }
            try network(version: 7, nodes: 2).json.write(to: URL(fileURLWithPath: path))
            await watcher.waitForVersion(7)
            #expect(watcher.current.definition.nodes.count == 2)
            group.cancelAll()
        }
    }
}
