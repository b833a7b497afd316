/// Which worker should own each partition (sans-I/O): every partition goes to a worker, the
/// workers' counts differ by at most one, and as few partitions as that allows change owner. A
/// partition's work moves at a cost (its owner stops, the next one claims and resumes it), so the
/// plan keeps every owner that a balanced assignment can keep.
///
/// Deterministic: the same owners and workers give the same plan, whoever computes it.
public enum PartitionPlan {
    /// The balanced assignment closest to `owners`.
    /// - Parameters:
    ///   - owners: each partition's owner now (nil: none); an owner not among `workers` counts as none.
    ///   - workers: the workers that may own partitions. When empty, `owners` comes back unchanged.
    /// - Returns: an owner for every partition, drawn from `workers`.
    public static func balance(owners: [String?], workers: Set<String>) -> [String?] {
        guard !workers.isEmpty else { return owners }
        var kept: [String: [Int]] = [:]
        for worker in workers { kept[worker] = [] }
        var free: [Int] = []
        for (partition, owner) in owners.enumerated() {
            if let owner, workers.contains(owner) { kept[owner, default: []].append(partition) } else { free.append(partition) }
        }
        // Every worker owns `base`; `extra` of them one more: those that keep the most now, so that
        // as few as possible give one up (ties by id, for determinism).
        let base = owners.count / workers.count
        let extra = owners.count % workers.count
        let ranked = workers.sorted { a, b in
            let (ka, kb) = (kept[a]!.count, kept[b]!.count)
            return ka != kb ? ka > kb : a < b
        }
        var target: [String: Int] = [:]
        for (rank, worker) in ranked.enumerated() { target[worker] = base + (rank < extra ? 1 : 0) }
        // A worker over its target gives up its highest partitions.
        for worker in ranked {
            let surplus = kept[worker]!.count - target[worker]!
            if surplus > 0 { free += kept[worker]!.suffix(surplus) }
        }
        var plan = owners
        for partition in free { plan[partition] = nil }
        free.sort()
        var next = free.makeIterator()
        for worker in workers.sorted() {
            for _ in 0..<max(0, target[worker]! - kept[worker]!.count) {
                guard let partition = next.next() else { break }
                plan[partition] = worker
            }
        }
        return plan
    }
}
