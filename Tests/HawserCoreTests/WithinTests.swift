import HawserCore
import Synchronization
import Testing

/// `within` bounds the wait even for a body that ignores cancellation, which a task group
/// cannot: it waits for every child before it returns.
@Suite(.timeLimit(.minutes(10))) struct WithinTests {
    /// A wait that ignores cancellation until `open()` is called, like a read from a server
    /// that stopped answering.
    final class Gate: Sendable {
        private let waiters = Mutex<[CheckedContinuation<Void, Never>]>([])
        private let opened = Mutex(false)
        func wait() async {
            await withCheckedContinuation { continuation in
                let now = opened.withLock { $0 }
                if now { continuation.resume() } else { waiters.withLock { $0.append(continuation) } }
            }
        }
        func open() {
            opened.withLock { $0 = true }
            for waiter in waiters.withLock({ w in defer { w = [] }; return w }) { waiter.resume() }
        }
    }

    @Test func aBodyThatIgnoresCancellationDoesNotHoldTheCallerPastTheDeadline() async throws {
        let gate = Gate()
        defer { gate.open() }
        let value = try await within(.milliseconds(50)) { await gate.wait(); return 1 }
        #expect(value == nil)
    }

    @Test func aBodyThatFinishesInTimeGivesItsValueOrItsError() async throws {
        #expect(try await within(.seconds(60)) { 7 } == 7)
        struct Refused: Error {}
        await #expect(throws: Refused.self) { _ = try await within(.seconds(60)) { () throws -> Int in throw Refused() } }
    }

    @Test func cancellingTheCallerEndsTheWaitAtOnce() async throws {
        let gate = Gate()
        defer { gate.open() }
        let caller = Task { try await within(.seconds(600)) { await gate.wait(); return 1 } }
        caller.cancel()
        await #expect(throws: CancellationError.self) { _ = try await caller.value }
    }
}
