import Coordination
import Foundation
import HawserCore
import HawserTestSupport
import Notary
import Testing
import Uniqueness

enum NotaryStoreCases {
    /// A batch that commits each (ref, txId) as a transaction spending ref, ending at `position`.
    static func batch(_ spends: [(StateRef, SecureHash)], position: UInt64) -> AppliedBatch {
        let requests = spends.map { (request: UniquenessRequest(txId: $0.1, inputs: [$0.0]), notaryTime: Instant(microsecondsSinceEpoch: 1)) }
        return AppliedBatch(decision: UniquenessChecker.decide(requests, known: UniquenessView()),
                            heads: [ChainHead(position: position, entryHash: .sha256([UInt8(position)]), stateHash: .zero)])
    }
}

/// The notary's store and log on every back end.
@Suite(PostgresTrait(ifAvailable: true), .timeLimit(.minutes(2)))
struct NotaryStoreConformanceTests {
    /// Applies `requests` as a replica does: decided against the facts the store reads.
    func apply(_ requests: [UniquenessRequest], at position: UInt64, to store: any NotaryStore) async throws -> [NotarisationOutcome] {
        let refs = requests.flatMap(\.inputs), txIds = requests.map(\.txId)
        let head = ChainHead(position: position, entryHash: .sha256([UInt8(position)]), stateHash: .sha256([UInt8(position), 1]))
        return try await store.apply(refs: refs, txIds: txIds) { view in
            AppliedBatch(decision: UniquenessChecker.decide(requests.map { ($0, Instant(microsecondsSinceEpoch: 1)) }, known: view), heads: [head])
        }.decision.outcomes
    }

    @Test(arguments: Backend.available) func spentStatesOutcomesAndTheHeadCommitTogether(_ backend: Backend) async throws {
        var ids = Ids(seed: 9)
        try await StoreDatabase.with(backend) { database in
            let store = try await database.notaryStore()
            #expect(try await store.head() == .genesis)
            let (a, b) = (ids.ref(), ids.ref())
            let (first, second, third) = (ids.hash(), ids.hash(), ids.hash())
            #expect(try await apply([UniquenessRequest(txId: first, inputs: [a, b])], at: 1, to: store) == [.committed])
            // The facts of the first batch decide the second: b is spent, and first is answered again.
            let outcomes = try await apply([UniquenessRequest(txId: second, inputs: [b]), UniquenessRequest(txId: first, inputs: [a, b]),
                                            UniquenessRequest(txId: third, inputs: [ids.ref()])], at: 2, to: store)
            #expect(outcomes.count == 3)
            #expect(outcomes[0] != .committed && outcomes[1] == .committed && outcomes[2] == .committed)
            #expect(try await store.outcome(of: second) == outcomes[0])
            #expect(try await store.outcome(of: ids.hash()) == nil)
            #expect(try await store.head().position == 2)
            #expect(try await store.head().stateHash == .sha256([2, 1]))

            // A batch that spends a ref twice is refused whole: neither its head nor its outcomes stay.
            let (c, fourth, fifth) = (ids.ref(), ids.hash(), ids.hash())
            await #expect(throws: (any Error).self) {
                _ = try await store.apply(refs: [c], txIds: [fourth]) { _ in
                    var batch = NotaryStoreCases.batch([(c, fourth)], position: 3)
                    batch.decision.newlySpent.append((c, fifth))
                    return batch
                }
            }
            #expect(try await store.head().position == 2)
            #expect(try await store.outcome(of: fourth) == nil)
        }
    }

    @Test func theDigestIsTheSameOnEveryBackEnd() async throws {
        var digests = [SecureHash]()
        for backend in Backend.available {
            var ids = Ids(seed: 10)
            try await StoreDatabase.with(backend) { database in
                let store = try await database.notaryStore()
                let empty = try await store.digest()
                for position in UInt64(1)...3 {
                    _ = try await apply((0..<5).map { _ in UniquenessRequest(txId: ids.hash(), inputs: [ids.ref(), ids.ref()]) },
                                        at: position, to: store)
                }
                let full = try await store.digest()
                #expect(full != empty)
                digests.append(full)
            }
        }
        #expect(Set(digests).count == 1)
    }

    @Test(arguments: Backend.available) func theLogAppendsInOrderRefusesAStaleEndAndWakesReaders(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let log = try await database.log()
            #expect(try await log.lastPosition() == 0)
            try await log.append([1], after: 0)
            try await log.append([2], after: 1)
            await #expect(throws: LogAppendConflict(expected: 1)) { try await log.append([9], after: 1) }
            #expect(try await log.read(after: 0, limit: 10) == [LogEntry(position: 1, payload: [1]), LogEntry(position: 2, payload: [2])])
            #expect(try await log.read(after: 1, limit: 1) == [LogEntry(position: 2, payload: [2])])
            // A reader past the end waits for the next append.
            let waiting = Task { try await log.read(after: 2, limit: 10) }
            try await log.append([3], after: 2)
            #expect(try await waiting.value == [LogEntry(position: 3, payload: [3])])
            #expect(try await log.lastPosition() == 3)
            // Opened again (a restart, or the other process of a PostgreSQL notary), it holds the same entries.
            let again = try await database.log()
            #expect(try await again.lastPosition() == 3)
            #expect(try await again.read(after: 2, limit: 10) == [LogEntry(position: 3, payload: [3])])
            // One entry by its position, without waiting (a replica's check of what it applied last).
            #expect(try await again.entry(at: 2) == LogEntry(position: 2, payload: [2]))
            #expect(try await again.entry(at: 4) == nil)
        }
    }
}
