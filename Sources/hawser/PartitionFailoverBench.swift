import Coordination
import Foundation

/// `hawser bench failover --partitions N`: three `election run --partitions N` workers per trial,
/// each making fenced writes while it leads a partition. A trial waits until the partitions are
/// balanced, kills one worker with SIGKILL at a random moment, and measures two things:
/// - **takeover**: from the kill until every partition it led has an accepted write by another
///   worker (its work resumed elsewhere);
/// - **rebalance**: the killed worker is started again; from its start until it has written to
///   every partition it leads once the partitions are balanced again (its first rounds, the
///   balancer's pass, the hold-down, the hand-overs, the claims).
struct PartitionFailoverBench {
    let partitions: Int
    let arguments: (String) -> [String]
    let timeout: Duration
    let directory: String
    static let workers = ["A", "B", "C"]

    func trial(_ trial: Int) async throws -> (takeover: Duration, rebalance: Duration) {
        let election = "bench-\(UUID().uuidString.prefix(8).lowercased())-\(trial)"
        let writes = "\(directory)/writes-\(trial).sqlite"
        defer { try? FileManager.default.removeItem(atPath: writes) }
        let common = ["election", "run"] + arguments(election) + ["--partitions", "\(partitions)", "--fenced-writes", writes,
                                                                 "--write-interval-ms", "20"]
        var children: [String: BenchChild] = [:]
        defer { for child in children.values { child.kill() } }
        for id in Self.workers { children[id] = try BenchChild("worker \(id)", arguments: common + ["--id", id]) }
        try await waitUntilBalanced(children)

        try await Task.sleep(for: .milliseconds(Int.random(in: 0..<1000)))
        let victim = Self.workers.randomElement()!
        let lost = Self.leading(children[victim]!.events)
        let killedAt = children[victim]!.kill().nanoseconds
        let survivors = children.filter { $0.key != victim }
        var resumed: Int64 = 0
        for partition in lost {
            try await survivors.first!.value.waitFor("partition \(partition) resumed", timeout: timeout) { _ in
                survivors.values.contains { $0.events.contains { Self.isWrite($0, partition, after: killedAt) } }
            }
            let first = survivors.values.compactMap { $0.events.first { Self.isWrite($0, partition, after: killedAt) }?.t }.min()!
            resumed = max(resumed, first)
        }

        let restartedAt = Moment.now().nanoseconds
        children[victim] = try BenchChild("worker \(victim) again", arguments: common + ["--id", victim])
        try await waitUntilBalanced(children)
        let returned = children[victim]!
        var back: Int64 = 0
        for partition in Self.leading(returned.events) {
            try await returned.waitFor("a write to partition \(partition)", timeout: timeout) { events in
                events.contains { Self.isWrite($0, partition, after: restartedAt) }
            }
            back = max(back, returned.events.first { Self.isWrite($0, partition, after: restartedAt) }!.t)
        }
        return (.nanoseconds(resumed - killedAt), .nanoseconds(back - restartedAt))
    }

    /// Waits until every worker leads its share and, together, every partition.
    private func waitUntilBalanced(_ children: [String: BenchChild]) async throws {
        let share = partitions / children.count
        try await children.values.first!.waitFor("balanced partitions", timeout: timeout) { _ in
            let led = children.values.map { Self.leading($0.events) }
            return led.allSatisfy { $0.count == share || $0.count == share + 1 } && led.reduce(into: Set<Int>()) { $0.formUnion($1) }.count == partitions
        }
    }

    /// The partitions whose last role event says the worker leads them.
    static func leading(_ events: [BenchChild.Event]) -> Set<Int> {
        var last: [Int: String] = [:]
        for event in events where ["leader", "follower", "not-standing"].contains(event.event) {
            if let partition = event.partition { last[partition] = event.event }
        }
        return Set(last.filter { $0.value == "leader" }.keys)
    }

    private static func isWrite(_ event: BenchChild.Event, _ partition: Int, after t: Int64) -> Bool {
        event.event == "write" && event.accepted == true && event.partition == partition && event.t > t
    }
}
