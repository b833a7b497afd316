@testable import PostgresStores
import Testing

/// The bounds of a request's pooled connection, without a server or a clock.
@Suite struct LeaseWatchTests {
    let start = ContinuousClock.now

    @Test func aRequestWithoutAConnectionGivesUpAtItsTimeoutAndThenTakesNone() {
        var watch = LeaseWatch(now: start, timeout: .seconds(10))
        let first = watch.firstCheck(now: start)
        let early = watch.check(now: start + .milliseconds(9_800), connectionClosed: false)
        let due = watch.check(now: start + .seconds(10), connectionClosed: false)
        let late = watch.grant()
        let after = watch.check(now: start + .seconds(11), connectionClosed: false)
        #expect(first == LeaseWatch.closedCheck, "a connection's close is looked for from the start")
        #expect(early == .wait(.milliseconds(200)), "the last check falls on the timeout")
        #expect(due == .noConnection)
        #expect(late == false, "a connection that comes after the timeout is not used")
        #expect(after == .done)
    }

    @Test func aGrantedRequestIsGivenUpOnlyWhenItsConnectionIsSeenClosedTwiceInARow() {
        var watch = LeaseWatch(now: start, timeout: .seconds(10))
        let granted = watch.grant()
        let expired = watch.expire()
        // Long past the timeout: a request that has its connection is never timed out.
        let open = watch.check(now: start + .seconds(60), connectionClosed: false)
        let closedOnce = watch.check(now: start + .seconds(61), connectionClosed: true)
        let closedTwice = watch.check(now: start + .seconds(62), connectionClosed: true)
        let after = watch.check(now: start + .seconds(63), connectionClosed: true)
        #expect(granted && !expired, "a request that has its connection runs to its end")
        #expect(open == .wait(LeaseWatch.closedCheck))
        #expect(closedOnce == .wait(LeaseWatch.closedCheck), "an answer under way at the close has a check's time to arrive")
        #expect(closedTwice == .connectionClosed && after == .done)
    }

    @Test func aRequestThatEndedOrWasCancelledIsNotCheckedAgain() {
        var ended = LeaseWatch(now: start, timeout: .seconds(10))
        let granted = ended.grant()
        let closedOnce = ended.check(now: start, connectionClosed: true)
        ended.end()
        let afterEnd = ended.check(now: start + .seconds(1), connectionClosed: true)
        #expect(granted && closedOnce == .wait(LeaseWatch.closedCheck) && afterEnd == .done)

        var cancelled = LeaseWatch(now: start, timeout: .seconds(10))
        let expired = cancelled.expire()
        let late = cancelled.grant()
        let afterCancel = cancelled.check(now: start + .seconds(11), connectionClosed: false)
        #expect(expired && !late && afterCancel == .done)
    }
}
