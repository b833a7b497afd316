import Coordination

/// What a hot-hot trial of `hawser bench failover --node` reads from its workers' event lines
/// (`serving` and `released`, one per partition as it starts or stops serving on that worker).
struct HotHotTrial {
    static let workers = ["W1", "W2", "W3"]
    let partitions: Int
    let timeout: Duration

    /// The partitions whose last event on this worker is `serving`.
    static func serving(_ events: [BenchChild.Event]) -> Set<Int> {
        var last: [Int: String] = [:]
        for event in events where event.event == "serving" || event.event == "released" {
            if let partition = event.partition { last[partition] = event.event }
        }
        return Set(last.filter { $0.value == "serving" }.keys)
    }

    /// Waits until every worker serves its share and, together, every partition.
    func waitUntilBalanced(_ workers: [String: BenchChild]) async throws {
        let share = partitions / workers.count
        try await workers.values.first!.waitFor("balanced partitions", timeout: timeout) { _ in
            let served = workers.values.map { Self.serving($0.events) }
            return served.allSatisfy { $0.count == share || $0.count == share + 1 }
                && served.reduce(into: Set<Int>()) { $0.formUnion($1) }.count == partitions
        }
    }

    /// When the last of `lost` began serving at one of `survivors` after `t` (CLOCK_MONOTONIC ns).
    func takeover(of lost: Set<Int>, by survivors: [String: BenchChild], after t: Int64) async throws -> Int64 {
        var resumed = t
        for partition in lost {
            func first() -> Int64? {
                survivors.values.compactMap { $0.events.first { $0.event == "serving" && $0.partition == partition && $0.t > t }?.t }.min()
            }
            try await survivors.values.first!.waitFor("partition \(partition) serving elsewhere", timeout: timeout) { _ in first() != nil }
            resumed = max(resumed, first()!)
        }
        return resumed
    }
}
