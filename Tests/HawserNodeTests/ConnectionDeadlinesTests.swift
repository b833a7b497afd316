@testable import HawserNode
import NIOCore
import Testing

/// The read deadlines of one connection, driven by events at chosen times (no sockets, no clock).
@Suite(.timeLimit(.minutes(10))) struct ConnectionDeadlinesTests {
    let limits = ConnectionDeadlines.Limits(head: .seconds(10), body: .seconds(30), idle: .seconds(75), linger: .seconds(2))
    func at(_ seconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(1_000 + seconds) * 1_000_000_000) }

    @Test func aNewConnectionMustSendItsHeadInTime() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        #expect(core.initialAction == .arm(at(10)))
        // Bytes trickle in: they do not move the deadline.
        #expect(core.bytesReceived(now: at(5)) == .none)
        #expect(core.timerFired(now: at(10)) == .close(.head))
    }

    /// A peer that reads none of the answers (pipelined requests, nothing read) is closed once
    /// they have not moved for the idle time, whatever the read deadlines do meanwhile; one that
    /// reads again in time is not. It held its connection for ever (found from outside).
    @Test func answersThePeerDoesNotReadMustMoveWithinTheIdleTime() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        #expect(core.headReceived(now: at(1), closeAfter: false) == .none)
        #expect(core.endReceived(now: at(1)) == .none)
        #expect(core.writabilityChanged(writable: false, now: at(2)) == .arm(at(77)))
        #expect(core.writabilityChanged(writable: false, now: at(5)) == .none, "the first stall's deadline stands")
        #expect(core.writabilityChanged(writable: true, now: at(50)) == .none)
        #expect(core.timerFired(now: at(77)) == .none, "it read again in time")
        #expect(core.writabilityChanged(writable: false, now: at(100)) == .arm(at(175)))
        // The next (pipelined) request's head deadline comes first and re-arms for the write's.
        #expect(core.bytesReceived(now: at(101)) == .arm(at(111)))
        #expect(core.timerFired(now: at(105)) == .arm(at(111)))
        #expect(core.headReceived(now: at(106), closeAfter: false) == .none)
        #expect(core.endReceived(now: at(106)) == .none)
        #expect(core.timerFired(now: at(111)) == .arm(at(175)))
        #expect(core.timerFired(now: at(175)) == .close(.write))
    }

    @Test func aBodyMustArriveWithinItsTimeOfTheServerWaitingForIt() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        #expect(core.headReceived(now: at(1), closeAfter: false) == .none)
        #expect(core.readRequested(now: at(1)) == .arm(at(31)))
        #expect(core.bytesReceived(now: at(20)) == .none)
        #expect(core.readRequested(now: at(20)) == .arm(at(31)))
        #expect(core.timerFired(now: at(31)) == .close(.body))
    }

    /// A server that stops reading (its handlers busy with other requests) does not spend the
    /// client's time: it closed a connection whose body the client had sent whole, unread, at
    /// the body deadline (found from outside, with large bodies on two cores).
    @Test func timeTheServerDoesNotAskForTheBodyDoesNotCount() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.readRequested(now: at(0))
        _ = core.bytesReceived(now: at(1))
        #expect(core.headReceived(now: at(1), closeAfter: false) == .none)
        #expect(core.readRequested(now: at(1)) == .arm(at(31)))
        #expect(core.bytesReceived(now: at(3)) == .none)
        // The server asks for nothing until 100: the deadline does not run meanwhile.
        #expect(core.timerFired(now: at(31)) == .none)
        #expect(core.readRequested(now: at(100)) == .arm(at(128)), "2 s of the 30 spent already")
        #expect(core.bytesReceived(now: at(110)) == .none)
        #expect(core.endReceived(now: at(110)) == .none)
        #expect(core.phase == .answering)
    }

    /// A head that arrives while the server still waits for bytes starts its body's time at once.
    @Test func aHeadReadWhileAReadIsOutstandingStartsTheBodysTime() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.readRequested(now: at(0))
        #expect(core.headReceived(now: at(1), closeAfter: false) == .arm(at(31)))
    }

    @Test func noDeadlineRunsWhileAnswering() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.headReceived(now: at(1), closeAfter: false)
        #expect(core.endReceived(now: at(1)) == .none)
        #expect(core.phase == .answering)
        #expect(core.timerFired(now: at(500)) == .none)
    }

    @Test func anAnsweredConnectionIdlesUntilTheNextRequestsFirstByte() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.headReceived(now: at(1), closeAfter: false)
        _ = core.endReceived(now: at(1))
        #expect(core.answerSent(now: at(3)) == .arm(at(78)))
        // A timer armed for an earlier deadline finds the later one and re-arms.
        #expect(core.timerFired(now: at(31)) == .arm(at(78)))
        #expect(core.bytesReceived(now: at(50)) == .arm(at(60)))
        #expect(core.timerFired(now: at(60)) == .close(.head))
    }

    /// Bytes after a whole request that asked to close fail to parse (nothing may follow it):
    /// they are dropped, and that request's answer is the last.
    @Test func bytesAfterARequestThatAskedToCloseAreDropped() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.headReceived(now: at(1), closeAfter: true)
        _ = core.endReceived(now: at(1))
        let (route, action) = core.parseFailed(now: at(1))
        #expect(route == .drop && action == .none)
        #expect(core.answeringLast)
        #expect(core.answerSent(now: at(2)) == .linger(at(4)))
    }

    @Test func anIdleConnectionIsClosed() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.headReceived(now: at(1), closeAfter: false)
        _ = core.endReceived(now: at(1))
        _ = core.answerSent(now: at(2))
        #expect(core.timerFired(now: at(77)) == .close(.idle))
    }

    @Test func aPipelinedRequestKeepsItsOwnDeadlineWhenTheFirstIsAnswered() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.headReceived(now: at(1), closeAfter: false)
        _ = core.endReceived(now: at(1))
        #expect(core.bytesReceived(now: at(2)) == .arm(at(12)))
        #expect(core.headReceived(now: at(3), closeAfter: false) == .none)
        #expect(core.readRequested(now: at(3)) == .arm(at(33)))
        #expect(core.answerSent(now: at(4)) == .none)
        #expect(core.phase == .readingBody)
        #expect(core.endReceived(now: at(5)) == .none)
        #expect(core.answerSent(now: at(6)) == .arm(at(81)))
    }

    @Test func anAnswerToACloseRequestLingersThenCloses() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.headReceived(now: at(1), closeAfter: true)
        // Answered early (413) while the body still arrives: input is dropped until the peer closes.
        #expect(core.answerSent(now: at(2)) == .linger(at(4)))
        #expect(core.headReceived(now: at(3), closeAfter: false) == .none)
        #expect(core.bytesReceived(now: at(3)) == .none)
        #expect(core.timerFired(now: at(4)) == .close(.linger))
    }

    /// An answer begun while its body still arrives (413) is the last: before, the server read the
    /// rest of an oversized body at full speed until the body deadline, to keep the connection.
    @Test func anEarlyAnswerEndsTheConnection() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.headReceived(now: at(1), closeAfter: false)
        core.answerStarting(status: 413)
        #expect(core.answeringLast)
        #expect(core.answerSent(now: at(2)) == .linger(at(4)))
        #expect(core.timerFired(now: at(4)) == .close(.linger))
        // An answer after the whole body keeps the connection.
        var kept = ConnectionDeadlines(limits: limits, now: at(0))
        _ = kept.headReceived(now: at(1), closeAfter: false)
        _ = kept.endReceived(now: at(1))
        kept.answerStarting(status: 200)
        #expect(!kept.answeringLast)
        #expect(kept.answerSent(now: at(2)) == .arm(at(77)))
        // But a 413 is the last whether or not its body was all in: that depended on the peer's speed.
        var late = ConnectionDeadlines(limits: limits, now: at(0))
        _ = late.headReceived(now: at(1), closeAfter: false)
        _ = late.endReceived(now: at(1))
        late.answerStarting(status: 413)
        #expect(late.answeringLast)
        #expect(late.answerSent(now: at(2)) == .linger(at(4)))
    }

    @Test func aLingeringConnectionClosesWhenThePeerDoes() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        #expect(core.inputClosed() == .none)
        _ = core.headReceived(now: at(1), closeAfter: true)
        _ = core.answerSent(now: at(2))
        #expect(core.inputClosed() == .close(.linger))
    }

    @Test func requestsAfterACloseRequestAreNotCounted() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.headReceived(now: at(1), closeAfter: true)
        _ = core.endReceived(now: at(1))
        #expect(core.headReceived(now: at(2), closeAfter: false) == .none)
        #expect(core.answerSent(now: at(3)) == .linger(at(5)))
    }

    @Test func unparsableInputBetweenRequestsIsAnsweredByTheServer() {
        var idle = ConnectionDeadlines(limits: limits, now: at(0))
        #expect(idle.parseFailed(now: at(1)) == (.drop, .answerMalformed(lingerUntil: at(3))))
        #expect(idle.parseFailed(now: at(2)) == (.drop, .none))

        // A pipelined head breaks while the request before it is answered: 400 after that answer,
        // which is then not the last one (no `Connection: close` on it).
        var busy = ConnectionDeadlines(limits: limits, now: at(0))
        _ = busy.headReceived(now: at(1), closeAfter: false)
        _ = busy.endReceived(now: at(1))
        _ = busy.bytesReceived(now: at(2))
        #expect(busy.parseFailed(now: at(2)) == (.drop, .none))
        #expect(!busy.answeringLast)
        #expect(busy.timerFired(now: at(100)) == .none)
        #expect(busy.answerSent(now: at(100)) == .answerMalformed(lingerUntil: at(102)))
    }

    @Test func unparsableInputWithinABodyIsHandedToItsReader() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.headReceived(now: at(1), closeAfter: false)
        #expect(core.parseFailed(now: at(2)) == (.handOver, .none))
        #expect(core.answeringLast)
        #expect(core.answerSent(now: at(3)) == .linger(at(5)))

        // Answered already (413): nothing more is said.
        var answered = ConnectionDeadlines(limits: limits, now: at(0))
        _ = answered.headReceived(now: at(1), closeAfter: false)
        _ = answered.answerSent(now: at(2))
        #expect(answered.parseFailed(now: at(3)) == (.drop, .linger(at(5))))
    }

    @Test func theAnswerToACloseRequestIsTheLast() {
        var core = ConnectionDeadlines(limits: limits, now: at(0))
        _ = core.headReceived(now: at(1), closeAfter: false)
        #expect(!core.answeringLast)
        _ = core.endReceived(now: at(1))
        _ = core.answerSent(now: at(2))
        _ = core.headReceived(now: at(3), closeAfter: true)
        #expect(core.answeringLast)
    }
}
