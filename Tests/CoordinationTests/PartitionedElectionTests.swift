import Foundation
import HawserTestSupport
import Testing

/// Partitions over processes (`hawser election run --partitions`): real processes on a SQLite
/// lease spread the partitions evenly, take over those of a worker killed with SIGKILL, give a
/// share back to it when it returns, and every partition's fenced writes stay in epoch order
/// with one writer per epoch throughout.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct PartitionedElectionTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hawser-partitions-\(UUID().uuidString)").path
    var writes: String { directory + "/writes.sqlite" }
    static let partitions = 6

    func start(_ id: String) throws -> CandidateProcess {
        try CandidateProcess(id: id, arguments: [
            "--sqlite", directory + "/lease.sqlite", "--partitions", "\(Self.partitions)", "--lease-ms", "1000",
            "--renew-ms", "200", "--request-timeout-ms", "500", "--stand-aside-ms", "1500", "--hold-down-ms", "500",
            "--fenced-writes", writes, "--write-interval-ms", "100",
        ])
    }

    /// Waits until each of `workers` leads `share` partitions and, together, all of them.
    static func waitUntilBalanced(_ workers: [CandidateProcess], share: Int) async throws {
        try await eventually("each of \(workers.map(\.id)) leading \(share) partitions", timeout: .seconds(60)) {
            let led = workers.map(\.leadingPartitions)
            return led.allSatisfy { $0.count == share } && led.reduce(into: Set<Int>()) { $0.formUnion($1) }.count == partitions
        }
    }

    @Test func partitionsSpreadMoveOffAKilledWorkerAndComeBackFencedThroughout() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let a = try start("a"), b = try start("b")
        var c = try start("c")
        try await Self.waitUntilBalanced([a, b, c], share: 2)
        // An operator sees the same in `hawser admin status --partitions` (once a hand-over the
        // plan still asks for, if any, is done: the store and the events then agree).
        try await eventually("admin status agreeing with the workers") {
            let status = try await ElectionCommandLineTests.runCapturing([
                "admin", "status", "--sqlite", directory + "/lease.sqlite", "--partitions", "\(Self.partitions)"])
            let shown = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any], "\(status)")
            let leads = try #require(shown["leads"] as? [String: [Int]])
            let numbered = (shown["partitions"] as? [[String: Any]])?.map { $0["partition"] as? Int }
            return numbered == (0..<Self.partitions).map { $0 }
                && leads.mapValues(Set.init) == ["a": a.leadingPartitions, "b": b.leadingPartitions, "c": c.leadingPartitions]
        }

        let hers = c.leadingPartitions
        c.kill()
        try await Self.waitUntilBalanced([a, b], share: 3)
        #expect(hers.isSubset(of: a.leadingPartitions.union(b.leadingPartitions)))

        c = try start("c")
        try await Self.waitUntilBalanced([a, b, c], share: 2)
        for worker in [a, b, c] { worker.terminate() }

        let log = try FencedLog.writes(writes)
        #expect(FencedLog.problems(log) == [])
        #expect(Set(log.map(\.resource)) == Set((0..<Self.partitions).map { "ledger.p\($0)" }))
        // A rebalance moved partitions with a new epoch each time: none was written under one only.
        for partition in hers {
            #expect(Set(log.filter { $0.resource == "ledger.p\(partition)" }.map(\.writer)).count > 1)
        }
    }
}
