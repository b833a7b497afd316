import Coordination
import Sim
import Testing

/// The partition plan: balanced within one, every partition owned, and as few moves as balance
/// allows; checked on fixed cases and on 2,000 seeded random ones.
@Suite struct PartitionPlanTests {
    @Test func aFirstPlanSpreadsThePartitionsEvenly() {
        let plan = PartitionPlan.balance(owners: Array(repeating: nil, count: 8), workers: ["a", "b", "c"])
        #expect(plan == ["a", "a", "a", "b", "b", "b", "c", "c"])
    }

    @Test func aWorkerThatJoinsTakesItsShareFromTheFullestOnly() {
        let owners: [String?] = ["a", "a", "a", "a", "b", "b", "b", "b"]
        let plan = PartitionPlan.balance(owners: owners, workers: ["a", "b", "c"])
        #expect(plan == ["a", "a", "a", "c", "b", "b", "b", "c"])
    }

    @Test func thePartitionsOfAWorkerThatLeftGoToTheOthersAndNothingElseMoves() {
        let owners: [String?] = ["a", "a", "a", "b", "b", "b", "c", "c"]
        let plan = PartitionPlan.balance(owners: owners, workers: ["a", "c"])
        #expect(plan == ["a", "a", "a", "a", "c", "c", "c", "c"])
    }

    @Test func withNoWorkersNothingChanges() {
        let owners: [String?] = ["a", nil]
        #expect(PartitionPlan.balance(owners: owners, workers: []) == owners)
    }

    @Test func randomPlansAreBalancedMinimalStableAndDeterministic() {
        var random = SeededGenerator(seed: 19)
        let names = ["w1", "w2", "w3", "w4", "w5", "w6"]
        for _ in 0..<2_000 {
            let partitions = Int.random(in: 1...40, using: &random)
            let workers = Set(names.filter { _ in Bool.random(using: &random) })
            guard !workers.isEmpty else { continue }
            // Owners now: any name (some gone), or none.
            let owners: [String?] = (0..<partitions).map { _ in
                Int.random(in: 0...7, using: &random) == 0 ? nil : names.randomElement(using: &random)
            }
            let plan = PartitionPlan.balance(owners: owners, workers: workers)

            let counts = workers.map { worker in plan.filter { $0 == worker }.count }
            #expect(plan.allSatisfy { $0.map(workers.contains) ?? false }, "every partition owned by a worker")
            #expect(counts.max()! - counts.min()! <= 1, "balanced: \(counts)")
            #expect(PartitionPlan.balance(owners: plan, workers: workers) == plan, "a balanced plan is kept")
            #expect(PartitionPlan.balance(owners: owners, workers: Set(workers.shuffled(using: &random))) == plan)

            // Moves: partitions whose owner is a worker but changes. The fewest any balanced plan
            // allows is what exceeds the targets, with the larger targets given to the largest owners.
            let moved = zip(owners, plan).filter { owner, planned in owner.map(workers.contains) == true && owner != planned }.count
            #expect(moved == Self.fewestMoves(owners: owners, workers: workers), "minimal")
        }
    }

    @Test func whenAWorkerLeavesABalancedPlanOnlyItsPartitionsMove() {
        var random = SeededGenerator(seed: 7)
        for _ in 0..<500 {
            let partitions = Int.random(in: 1...64, using: &random)
            let workers = Set((1...Int.random(in: 2...6, using: &random)).map { "w\($0)" })
            let before = PartitionPlan.balance(owners: Array(repeating: nil, count: partitions), workers: workers)
            let leaver = workers.randomElement(using: &random)!
            let after = PartitionPlan.balance(owners: before, workers: workers.subtracting([leaver]))
            for (owner, planned) in zip(before, after) where owner != leaver {
                #expect(owner == planned)
            }
        }
    }

    /// The least number of kept owners that must change for the counts to differ by at most one.
    static func fewestMoves(owners: [String?], workers: Set<String>) -> Int {
        let kept = workers.map { worker in owners.filter { $0 == worker }.count }.sorted(by: >)
        let base = owners.count / workers.count, extra = owners.count % workers.count
        return kept.enumerated().map { rank, count in max(0, count - base - (rank < extra ? 1 : 0)) }.reduce(0, +)
    }
}
