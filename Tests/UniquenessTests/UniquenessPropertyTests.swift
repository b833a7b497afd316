import Testing
import HawserCore
import Uniqueness
import HawserTestSupport

/// A random scenario: a small pool of states and transactions (so that conflicts and repeats
/// are common), a partly filled view, and a log of requests with non-decreasing entry times.
struct Scenario {
    var known: UniquenessView
    var log: [(request: UniquenessRequest, notaryTime: Instant)]

    init(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let refs = (0..<UInt8.random(in: 4...20, using: &rng)).map { ref($0, UInt32.random(in: 0...1, using: &rng)) }
        func someRefs(_ max: Int) -> [StateRef] {
            (0..<Int.random(in: 0...max, using: &rng)).map { _ in refs.randomElement(using: &rng)! }
        }
        func window() -> TimeWindow? {
            guard Int.random(in: 0..<3, using: &rng) == 0 else { return nil }
            let a = Int64.random(in: 0...100, using: &rng), b = Int64.random(in: 0...100, using: &rng)
            return TimeWindow(from: Bool.random(using: &rng) ? at(min(a, b)) : nil,
                              until: Bool.random(using: &rng) ? at(max(a, b)) : nil)
        }
        // The same id always carries the same transaction, as it does on a real ledger.
        let transactions = (0..<UInt8.random(in: 1...30, using: &rng)).map {
            UniquenessRequest(txId: tx($0), inputs: someRefs(3), references: someRefs(2), timeWindow: window())
        }
        known = UniquenessView()
        for r in refs where Int.random(in: 0..<6, using: &rng) == 0 {
            known.spentBy[r] = tx(UInt8.random(in: 200...210, using: &rng))  // spent before this run
        }
        for t in transactions where Int.random(in: 0..<10, using: &rng) == 0 {
            known.outcomes[t.txId] = .conflict([])  // decided before this run
        }
        var time: Int64 = 0
        log = (0..<Int.random(in: 0...80, using: &rng)).map { _ in
            time += Int64.random(in: 0...3, using: &rng)
            return (transactions.randomElement(using: &rng)!, at(time))
        }
    }
}

/// An independent, deliberately plain statement of the rules.
func oracle(_ log: [(request: UniquenessRequest, notaryTime: Instant)], known: UniquenessView) -> [NotarisationOutcome] {
    var spent = known.spentBy, decided = known.outcomes
    var outcomes = [NotarisationOutcome]()
    for (r, time) in log {
        if let d = decided[r.txId] { outcomes.append(d); continue }
        var conflicts = [Conflict]()
        for i in r.inputs { if let c = spent[i], c != r.txId { conflicts.append(Conflict(ref: i, kind: .input, consumingTxIdHash: hashOf(c))) } }
        for i in r.references { if let c = spent[i], c != r.txId { conflicts.append(Conflict(ref: i, kind: .reference, consumingTxIdHash: hashOf(c))) } }
        let outcome: NotarisationOutcome
        if !conflicts.isEmpty {
            outcome = .conflict(conflicts)
        } else if let w = r.timeWindow, !((w.from.map { time >= $0 } ?? true) && (w.until.map { time < $0 } ?? true)) {
            outcome = .timeWindowInvalid(notaryTime: time, window: w)
        } else {
            outcome = .committed
            for i in r.inputs where spent[i] == nil { spent[i] = r.txId }
        }
        decided[r.txId] = outcome
        outcomes.append(outcome)
    }
    return outcomes
}

@Suite(.timeLimit(.minutes(10))) struct UniquenessPropertyTests {
    static let seeds: [UInt64] = Array(1...400)

    @Test func matchesTheOracle() {
        for seed in Self.seeds {
            let s = Scenario(seed: seed)
            let decision = UniquenessChecker.decide(s.log, known: s.known)
            #expect(decision.outcomes == oracle(s.log, known: s.known), "seed \(seed)")
        }
    }

    /// One call or many with the view carried over: the same outcomes, the same facts, in the same order.
    @Test func splittingBatchesChangesNothing() {
        for seed in Self.seeds {
            let s = Scenario(seed: seed)
            let whole = UniquenessChecker.decide(s.log, known: s.known)
            var rng = SeededGenerator(seed: seed &* 31)
            for _ in 0..<3 {
                var view = s.known
                var outcomes = [NotarisationOutcome]()
                var newOutcomes = [(txId: SecureHash, outcome: NotarisationOutcome)]()
                var newlySpent = [(ref: StateRef, txId: SecureHash)]()
                var rest = s.log[...]
                while !rest.isEmpty {
                    let n = Int.random(in: 1...max(1, rest.count), using: &rng)
                    let part = UniquenessChecker.decide(Array(rest.prefix(n)), known: view)
                    rest = rest.dropFirst(n)
                    view = persisted(part, on: view)
                    outcomes += part.outcomes
                    newOutcomes += part.newOutcomes
                    newlySpent += part.newlySpent
                }
                #expect(outcomes == whole.outcomes, "seed \(seed)")
                #expect(newOutcomes.elementsEqual(whole.newOutcomes) { $0.txId == $1.txId && $0.outcome == $1.outcome }, "seed \(seed)")
                #expect(newlySpent.elementsEqual(whole.newlySpent) { $0.ref == $1.ref && $0.txId == $1.txId }, "seed \(seed)")
            }
        }
    }

    /// The apply path reads no dictionary order: views built in different orders decide alike.
    @Test func viewOrderDoesNotMatter() {
        for seed in Self.seeds.prefix(100) {
            let s = Scenario(seed: seed)
            var shuffled = UniquenessView(spentBy: Dictionary(minimumCapacity: 1000), outcomes: Dictionary(minimumCapacity: 1000))
            var rng = SeededGenerator(seed: seed)
            for (k, v) in s.known.spentBy.shuffled(using: &rng) { shuffled.spentBy[k] = v }
            for (k, v) in s.known.outcomes.shuffled(using: &rng) { shuffled.outcomes[k] = v }
            #expect(UniquenessChecker.decide(s.log, known: shuffled) == UniquenessChecker.decide(s.log, known: s.known), "seed \(seed)")
        }
    }

    @Test func invariants() {
        var committedSome = 0, conflicts = 0, late = 0
        for seed in Self.seeds {
            let s = Scenario(seed: seed)
            let decision = UniquenessChecker.decide(s.log, known: s.known)
            #expect(decision.outcomes.count == s.log.count)
            let final = persisted(decision, on: s.known)  // fails if a ref is spent or a tx decided twice

            // No state is ever spent by two transactions.
            let spentRefs = decision.newlySpent.map(\.ref)
            #expect(Set(spentRefs).count == spentRefs.count, "seed \(seed)")
            #expect(spentRefs.allSatisfy { s.known.spentBy[$0] == nil }, "seed \(seed)")
            // Each transaction is decided once, never again.
            let decided = decision.newOutcomes.map(\.txId)
            #expect(Set(decided).count == decided.count)
            #expect(decided.allSatisfy { s.known.outcomes[$0] == nil })

            var firstTime = [SecureHash: Instant]()
            for (i, (request, time)) in s.log.enumerated() {
                let outcome = decision.outcomes[i]
                // Every request about a transaction gets its one final outcome.
                #expect(outcome == final.outcomes[request.txId], "seed \(seed) entry \(i)")
                if firstTime[request.txId] == nil { firstTime[request.txId] = time }
                switch outcome {
                case .committed:
                    committedSome += 1
                    // Committed: every input is spent, by this transaction.
                    for input in request.inputs { #expect(final.spentBy[input] == request.txId, "seed \(seed) entry \(i)") }
                    if s.known.outcomes[request.txId] == nil, let w = request.timeWindow {
                        #expect(w.contains(firstTime[request.txId]!))
                    }
                case .conflict(let cs):
                    conflicts += 1
                    // Each conflict names a ref of the request, of the right kind, and the hash of its consumer.
                    for c in cs {
                        #expect((c.kind == .input ? request.inputs : request.references).contains(c.ref))
                        #expect(final.spentBy[c.ref].map(hashOf) == c.consumingTxIdHash)
                        #expect(final.spentBy[c.ref] != request.txId)
                    }
                case .timeWindowInvalid(let notaryTime, let window):
                    late += 1
                    #expect(notaryTime == firstTime[request.txId], "seed \(seed) entry \(i)")
                    #expect(window == request.timeWindow)
                    #expect(!window.contains(notaryTime))
                }
                // A rejected transaction spends nothing.
                if !outcome.isCommitted {
                    #expect(!decision.newlySpent.contains { $0.txId == request.txId }, "seed \(seed) entry \(i)")
                }
            }
        }
        // The scenarios exercise every rule.
        #expect(committedSome > 1000 && conflicts > 1000 && late > 100)
    }
}
