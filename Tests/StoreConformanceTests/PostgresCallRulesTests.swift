@testable import PostgresStores
import Testing

/// The rules of one bounded call on the pool, without I/O: the first ending wins, and a
/// connection that comes after the call has ended is handed back.
@Suite(.timeLimit(.minutes(10)))
struct PostgresCallRulesTests {
    @Test func aCallEndsOnceAtTheFirstEnding() {
        var rules = PostgresCallRules()
        #expect(rules.connected() == .run)
        #expect(rules.connectionClosed() == .end(.connectionClosed))
        // The body's own end, the request bound and a cancellation that follow change nothing.
        #expect(rules.bodyEnded() == .none)
        #expect(rules.requestBoundPassed() == .none)
        #expect(rules.cancelled() == .none)
        #expect(rules.phase == .ended)
    }

    @Test func eachBoundCountsOnlyInItsPhase() {
        var leasing = PostgresCallRules()
        #expect(leasing.requestBoundPassed() == .none)
        #expect(leasing.connectionClosed() == .none)
        #expect(leasing.leaseBoundPassed() == .end(.noConnection))
        #expect(leasing.connected() == .refuse, "a connection that comes too late goes back at once")

        var running = PostgresCallRules()
        #expect(running.connected() == .run)
        #expect(running.leaseBoundPassed() == .none, "the lease bound does not cut a call that has its connection")
        #expect(running.requestBoundPassed() == .end(.requestTimedOut))
    }

    @Test func aBodyThatEndsWithoutAConnectionIsThePoolsRefusal() {
        var refused = PostgresCallRules()
        #expect(refused.bodyEnded() == .end(.leaseFailed))
        var served = PostgresCallRules()
        _ = served.connected()
        #expect(served.bodyEnded() == .end(.body))
        var cancelled = PostgresCallRules()
        #expect(cancelled.cancelled() == .end(.cancelled))
        #expect(cancelled.connected() == .refuse)
    }
}
