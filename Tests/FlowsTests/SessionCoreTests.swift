import Flows
import Foundation
import HawserCore
import Sessions
import Testing

/// The session rules (`SessionCore`, `SessionInbound`, `LinkBackoff`), sans-I/O.
@Suite(.timeLimit(.minutes(10))) struct SessionCoreTests {
    let alice = FlowSession(id: "f/0", ourParty: "O=Alice", counterparty: "O=Bob", isInitiator: true)
    let bob = FlowSession(id: "f/0", ourParty: "O=Bob", counterparty: "O=Alice", isInitiator: false)
    let ping = SessionMessage.Initiator(flowName: "Ping", version: 1)

    func message(_ sequence: Int, _ kind: SessionMessage.Kind = .data, from: String = "O=Bob", to: String = "O=Alice",
                 payload: [UInt8] = [], error: SessionError? = nil) -> SessionMessage {
        SessionMessage(session: "f/0", sender: from, recipient: to, sequence: sequence, kind: kind, payload: payload, error: error)
    }

    @Test func theInitiatorNumbersFromItsInitiateAndAwaitsTheResponderFromOne() throws {
        var core = SessionCore.initiating(alice)
        let opening = core.initiate(ping)
        #expect(opening.kind == .initiate && opening.sequence == 1 && opening.initiator == ping)
        #expect(opening.sender == "O=Alice" && opening.recipient == "O=Bob")
        #expect(try core.send([7]).sequence == 2)
        #expect(try core.awaited() == SessionMessageKey(session: "f/0", sender: "O=Bob", sequence: 1))
    }

    @Test func theResponderHasTakenTheInitiateAndNumbersItsOwnFromOne() throws {
        var core = SessionCore.responding(bob)
        #expect(try core.awaited() == SessionMessageKey(session: "f/0", sender: "O=Alice", sequence: 2))
        let first = try core.send([1])
        #expect(first.sequence == 1 && first.kind == .data && first.payload == Data([1]))
    }

    @Test func dataIsTakenInSequenceOrder() throws {
        var core = SessionCore.initiating(alice)
        _ = core.initiate(ping)
        #expect(try core.take(.message(message(1, payload: [1]))) == [1])
        #expect(try core.awaited().sequence == 2)
        #expect(try core.take(.message(message(2, payload: [2]))) == [2])
        #expect(core.received == 2)
    }

    @Test func aMessageOtherThanTheAwaitedOneBreaksTheSession() throws {
        for wrong in [message(2), message(1, from: "O=Carol"), message(1, to: "O=Carol")] {
            var core = SessionCore.initiating(alice)
            _ = core.initiate(ping)
            #expect(throws: SessionError.self) { try core.take(.message(wrong)) }
            guard case .ended(let error) = core.phase else { Issue.record("still \(core.phase)"); continue }
            #expect(error.code == .protocolViolation)
        }
    }

    @Test func theCounterpartysCloseEndsTheSessionForBothDirections() throws {
        var core = SessionCore.responding(bob)
        let closing = message(2, .close, from: "O=Alice", to: "O=Bob")
        #expect(throws: SessionError(.sessionClosed, "O=Alice closed session f/0")) { try core.take(.message(closing)) }
        #expect(throws: SessionError.self) { try core.send([1]) }
        #expect(throws: SessionError.self) { try core.awaited() }
        #expect(core.farewell(failure: nil) == nil, "nothing is sent on a session the counterparty ended")
    }

    @Test func theCounterpartysErrorReachesTheFlowAsItsCode() throws {
        var core = SessionCore.initiating(alice)
        _ = core.initiate(ping)
        let failure = SessionError(.counterpartyFailed, "the counterparty's flow failed: no")
        #expect(throws: failure) { try core.take(.message(message(1, .error, error: failure))) }
    }

    @Test func silenceWithinTheTimeoutEndsTheSessionAndTheFlowsEndTellsTheCounterparty() throws {
        var core = SessionCore.initiating(alice)
        _ = core.initiate(ping)
        #expect { try core.take(.timedOut) } throws: { ($0 as? SessionError)?.code == .sessionTimeout }
        #expect { try core.send([1]) } throws: { ($0 as? SessionError)?.code == .sessionTimeout }
        #expect(core.close() == nil)
        // Whether the flow completed (it caught the timeout) or failed, the counterparty hears why.
        let farewell = core.farewell(failure: nil)
        let told = try #require(farewell)
        #expect(told.kind == .error && told.sequence == 2 && told.recipient == "O=Bob")
        #expect(told.error?.code == .sessionTimeout)
        #expect(core.farewell(failure: nil) == nil, "told once")
        #expect { try core.awaited() } throws: { ($0 as? SessionError)?.code == .sessionTimeout }
    }

    @Test func theCounterpartysTimeoutIsNotAnsweredInKind() throws {
        var core = SessionCore.responding(bob)
        let timedOut = SessionError(.sessionTimeout, "O=Alice heard nothing from O=Bob in session f/0 within its session timeout")
        #expect(throws: timedOut) { try core.take(.message(message(2, .error, from: "O=Alice", to: "O=Bob", error: timedOut))) }
        #expect(core.farewell(failure: SessionError(.counterpartyFailed, "the counterparty's flow failed")) == nil)
    }

    @Test func closingSendsCloseOnceAndThenRefusesTheSession() throws {
        var core = SessionCore.initiating(alice)
        _ = core.initiate(ping)
        let closed = core.close()
        let closing = try #require(closed)
        #expect(closing.kind == .close && closing.sequence == 2)
        #expect(core.close() == nil)
        #expect { try core.send([1]) } throws: { ($0 as? SessionError)?.code == .sessionNotOpen }
        #expect { try core.awaited() } throws: { ($0 as? SessionError)?.code == .sessionNotOpen }
    }

    @Test func aFlowsEndClosesOrFailsItsOpenSessions() throws {
        var completed = SessionCore.responding(bob)
        let farewell = completed.farewell(failure: nil)
        let close = try #require(farewell)
        #expect(close.kind == .close && close.sequence == 1 && close.recipient == "O=Alice")
        var failed = SessionCore.responding(bob)
        let failure = SessionError(.counterpartyFailed, "boom")
        let failing = failed.farewell(failure: failure)
        let error = try #require(failing)
        #expect(error.kind == .error && error.error == failure)
        #expect(failed.farewell(failure: failure) == nil)
    }

    @Test func messagesEncodeAndDecodeToTheSameValue() throws {
        let sent = SessionMessage(session: "f/3", sender: "O=A", recipient: "O=B", sequence: 4, kind: .error, payload: [1, 2],
                                  initiator: ping, error: SessionError(.noResponder, "none"))
        #expect(try SessionMessage.decode(sent.encoded()) == sent)
        #expect(sent.key.description == "f/3|O=A|4")
        #expect(OutboxMessage(sent).messageId == sent.key.description)
    }
}

@Suite(.timeLimit(.minutes(10))) struct SessionInboundTests {
    let initiate = SessionMessage(session: "f/0", sender: "O=Alice", recipient: "O=Bob", sequence: 1, kind: .initiate,
                                  initiator: SessionMessage.Initiator(flowName: "Ping", version: 2))

    @Test func anInitiateStartsTheResponderRegisteredForItsFlowAndVersion() {
        let decision = SessionInbound.decide(initiate) { $0 == SessionMessage.Initiator(flowName: "Ping", version: 2) ? "Pong" : nil }
        #expect(decision == .startResponder(flowName: "Pong", session: FlowSession(id: "f/0", ourParty: "O=Bob", counterparty: "O=Alice",
                                                                                   isInitiator: false)))
    }

    @Test func anInitiateWithoutAResponderIsRefusedAndTheInitiatorHearsWhy() throws {
        guard case .refuse(let error) = SessionInbound.decide(initiate, responder: { _ in nil }) else {
            Issue.record("not refused")
            return
        }
        #expect(error.code == .noResponder)
        let answer = try #require(SessionInbound.refusal(of: initiate, error))
        #expect(answer.key == SessionMessageKey(session: "f/0", sender: "O=Bob", sequence: 1))
        #expect(answer.recipient == "O=Alice" && answer.kind == .error && answer.error == error)
    }

    @Test func otherMessagesAreStoredAndOnlyAnInitiateIsAnsweredOnRefusal() {
        var data = initiate
        data.kind = .data
        data.sequence = 2
        #expect(SessionInbound.decide(data) { _ in nil } == .store)
        #expect(SessionInbound.refusal(of: data, SessionError(.protocolViolation, "x")) == nil)
    }

    @Test func messagesOutsideTheProtocolAreRefused() {
        var late = initiate
        late.sequence = 2
        var unnamed = initiate
        unnamed.initiator = nil
        var zero = initiate
        zero.kind = .data
        zero.sequence = 0
        var long = initiate
        long.session = String(repeating: "s", count: SessionInbound.maxSessionIdBytes + 1)
        // A control character, as a client request id may hold none: it was answered as if the
        // node could take no messages now, and delivered again for ever (found from outside).
        var control = initiate, nul = initiate
        control.session = "ctl\u{1}b/0"
        nul.session = "abc\u{0}/0"
        for message in [late, unnamed, zero, long, control, nul] {
            guard case .refuse(let error) = SessionInbound.decide(message, responder: { _ in "Pong" }) else {
                Issue.record("\(message) not refused")
                continue
            }
            #expect(error.code == .protocolViolation)
        }
    }

    @Test func theResponderIsStartedOncePerSession() {
        #expect(SessionInbound.responderRequestId("f/0") == SessionInbound.responderRequestId("f/0"))
        #expect(SessionInbound.responderRequestId("f/0") != SessionInbound.responderRequestId("f/1"))
    }
}

@Suite(.timeLimit(.minutes(10))) struct LinkBackoffTests {
    let start = Instant(microsecondsSinceEpoch: 1_000_000)
    func at(_ millis: Int64) -> Instant { Instant(microsecondsSinceEpoch: start.microsecondsSinceEpoch + millis * 1_000) }

    @Test func aFailedPeerIsPutOffForDoublingDelaysUpToTheCap() {
        var backoff = LinkBackoff(policy: .init(initialDelay: .milliseconds(100), maxDelay: .milliseconds(350)))
        #expect(backoff.putOff(now: start).isEmpty)
        #expect(backoff.failed("O=Bob", now: start) == at(100))
        #expect(backoff.putOff(now: at(99)) == ["O=Bob"] && backoff.putOff(now: at(100)).isEmpty)
        #expect(backoff.putOff(now: at(50)) == ["O=Bob"])
        #expect(backoff.failed("O=Bob", now: at(100)) == at(300))
        #expect(backoff.failed("O=Bob", now: at(300)) == at(650))
        #expect(backoff.failed("O=Bob", now: at(650)) == at(1_000))
        #expect(backoff.failures(of: "O=Bob") == 4)
        #expect(!backoff.putOff(now: at(650)).contains("O=Carol"), "other peers are not put off")
    }

    @Test func aDeliveryClearsThePeer() {
        var backoff = LinkBackoff(policy: .init(initialDelay: .milliseconds(100), maxDelay: .seconds(1)))
        backoff.failed("O=Bob", now: start)
        backoff.failed("O=Carol", now: at(10))
        #expect(backoff.nextRetry(after: start) == at(100))
        backoff.delivered("O=Bob")
        #expect(backoff.putOff(now: start) == ["O=Carol"] && backoff.failures(of: "O=Bob") == 0)
        #expect(backoff.nextRetry(after: start) == at(110))
        // A retry time that has passed is not waited for (the peer is being tried again).
        #expect(backoff.nextRetry(after: at(110)) == nil)
    }

    @Test func invalidSettingsAreNamed() {
        #expect(SessionConfiguration().problems.isEmpty)
        let bad = SessionConfiguration(timeout: .zero, backoff: .init(initialDelay: .seconds(2), maxDelay: .seconds(1)),
                                       pollInterval: .zero, batchSize: 0, inboxPruneInterval: .milliseconds(99))
        #expect(bad.problems.count == 5)
    }
}
