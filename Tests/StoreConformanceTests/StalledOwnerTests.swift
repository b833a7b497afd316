import Coordination
import Foundation
import HawserCore
import HawserTestSupport
import Notary
import PostgresStores
import Testing

/// A hot-warm notary's former owner paused inside a transaction on the shared PostgreSQL database
/// holds the fencing row: the new owner's claim must still get through, once PostgreSQL ends the
/// stalled transaction, and nothing of that transaction commits.
@Suite(.enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root"), PostgresTrait(), .timeLimit(.minutes(2)))
struct StalledOwnerTests {
    @Test func aClaimGetsThroughAFormerOwnerStalledInsideItsTransaction() async throws {
        var ids = Ids(seed: 11)
        try await StoreDatabase.with(.postgres) { database in
            let oldFence = WriteFence(resource: "notary/0"), newFence = WriteFence(resource: "notary/0")
            let old = try #require(try await database.notaryStore(fence: oldFence) as? PostgresNotaryStore)
            let new = try #require(try await database.notaryStore(fence: newFence) as? PostgresNotaryStore)
            let (ref, txId) = (ids.ref(), ids.hash())
            oldFence.hold(Epoch(1))
            try await old.claim()

            // The old owner stalls between its statements (as a process paused by SIGSTOP does).
            let release = DispatchSemaphore(value: 0)
            let (entered, enter) = AsyncStream.makeStream(of: Void.self)
            let stalled = Task {
                try await old.apply(refs: [ref], txIds: [txId]) { _ in
                    enter.yield()
                    _ = release.wait(timeout: .now() + 30)
                    return NotaryStoreCases.batch([(ref, txId)], position: 1)
                }
            }
            for await _ in entered { break }

            // The new owner claims as a shard does: again and again until it commits.
            newFence.hold(Epoch(2))
            try await withDeadline(.seconds(20), "the claim past a stalled former owner") {
                while true {
                    do { return try await new.claim() } catch let error as CoordinationError where error.isFencingRefusal { throw error } catch {}
                }
            }
            release.signal()
            await #expect(throws: (any Error).self) { _ = try await stalled.value }
            #expect(try await new.outcome(of: txId) == nil, "nothing of the stalled transaction committed")
            #expect(try await new.head().position == 0)
        }
    }
}
