@testable import HawserNode
import Synchronization
import Testing

/// The health checks of a process's stands share one read of the database (`SharedProbe`).
struct SharedProbeTests {
    final class Reads: Sendable {
        let count = Mutex(0)
        let failing = Mutex(false)
        struct Down: Error {}

        func read() async throws {
            count.withLock { $0 += 1 }
            if failing.withLock({ $0 }) { throw Down() }
        }
    }

    @Test func checksAtOnceShareOneReadAndASuccessIsKeptWhileFresh() async throws {
        let reads = Reads()
        let probe = SharedProbe(fresh: .seconds(3600)) { try await reads.read() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<16 { group.addTask { try await probe() } }
            try await group.waitForAll()
        }
        #expect(reads.count.withLock { $0 } == 1)
        try await probe()
        #expect(reads.count.withLock { $0 } == 1, "a success an hour fresh answers without a read")
    }

    @Test func aFailureIsNotKeptAndEveryCheckReadsWhenNothingIsFresh() async throws {
        let reads = Reads()
        reads.failing.withLock { $0 = true }
        let probe = SharedProbe(fresh: .seconds(3600)) { try await reads.read() }
        await #expect(throws: Reads.Down.self) { try await probe() }
        reads.failing.withLock { $0 = false }
        try await probe()
        #expect(reads.count.withLock { $0 } == 2, "the failure was not kept: the next check read again")

        let stale = SharedProbe(fresh: .zero) { try await reads.read() }
        for _ in 0..<3 { try await stale() }
        #expect(reads.count.withLock { $0 } == 5)
    }
}
