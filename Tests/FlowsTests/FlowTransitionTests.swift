@testable import Flows
import HawserCore
import Testing

/// `FlowTransition` driven without I/O: every event in every phase it can arrive in, and the
/// events that cannot arrive in a phase change nothing.
@Suite(.timeLimit(.minutes(10))) struct FlowTransitionTests {
    typealias T = FlowTransition
    let policy = HospitalPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(1), maxAttempts: 2)
    let now = Instant(microsecondsSinceEpoch: 5_000_000)
    let record = FlowRecord(id: FlowID("f"), clientRequestId: nil, flowName: "F", arguments: [], createdAt: Instant(microsecondsSinceEpoch: 1),
                            updatedAt: Instant(microsecondsSinceEpoch: 1))
    let journal = [JournalEntry(sequence: 0, kind: EffectKind.random, descriptor: "", result: Array("1".utf8))]
    struct Bug: Error {}

    func step(_ event: T.Event, _ state: T.State) -> (T.State, [T.Action]) {
        T.transition(event, state, now: now, policy: policy)
    }

    func state(_ phase: T.Phase, startUnwritten: Bool = false, attempts: Int = 0) -> T.State {
        var state = T.State(attempts: 0, startUnwritten: startUnwritten)
        state.phase = phase
        state.attempts = attempts
        return state
    }

    func at(_ status: FlowStatus, error: String? = nil, attempts: Int = 0, retryAt: Instant? = nil) -> FlowState {
        FlowState(status: status, error: error, attempts: attempts, retryAt: retryAt, updatedAt: now)
    }

    @Test func aLaunchedFlowRunsItsKnownJournalOrReadsTheStoreFirst() {
        let launched = T.State(attempts: 0, startUnwritten: true, clearsMarker: true)
        let (running, actions) = step(.begin(journal: journal), launched)
        #expect(actions == [.run(journal: journal, carriesStart: true, clearsMarker: true)])
        #expect(running.phase == .running && !running.clearsMarker)

        let (reading, read) = step(.begin(journal: nil), launched)
        #expect(read == [.readDurable] && reading.phase == .reading)

        let (ended, parked) = step(.undecodable("no such field"), launched)
        #expect(parked == [.record(at(.hospitalised, error: "no such field")), .end] && ended.phase == .ended)
    }

    @Test func whatTheStoreHoldsDecidesTheRun() {
        var reading = T.State(attempts: 0, startUnwritten: true, clearsMarker: true)
        reading.phase = .reading
        #expect(step(.read(.absent), reading).1 == [.end])
        var stored = record
        stored.status = .completed
        #expect(step(.read(.ended(stored)), reading).1 == [.announceStored(stored), .end])
        let (running, actions) = step(.read(.unfinished(journal)), reading)
        #expect(actions == [.record(at(.running)), .run(journal: journal, carriesStart: false, clearsMarker: true)])
        #expect(running.phase == .running && !running.startUnwritten && !running.clearsMarker)
    }

    @Test func aReturnedBodyEndsOnceItsEndIsDurable() {
        let (ending, commit) = step(.returned(Array("7".utf8)), state(.running, attempts: 1))
        let final = FlowState(status: .completed, result: Array("7".utf8), attempts: 1, updatedAt: now)
        #expect(commit == [.commitEnd(final)] && ending.phase == .ending(final))
        let (ended, announce) = step(.committed, ending)
        #expect(announce == [.announce(final), .end] && ended.phase == .ended)
        // The end's commit failing is a failure like any other: the hospital retries. Nothing of
        // it is committed apart: it may have been made, its answer lost (the session simulation's
        // seed 284 credited a payee twice so).
        let (waiting, retry) = step(.failed(TransientFlowError("down"), startWritten: true), ending)
        #expect(!retry.contains(.keepRecorded) && retry.first == .recordIfUnfinished(at(.hospitalised, error: "down", attempts: 2,
                retryAt: Instant(microsecondsSinceEpoch: now.microsecondsSinceEpoch + 200_000))))
        #expect(waiting.phase == .waiting && waiting.attempts == 2)
    }

    @Test func theHospitalTreatsAFailedRun() {
        let running = state(.running)
        let (waiting, retry) = step(.failed(TransientFlowError("down"), startWritten: true), running)
        let retryAt = Instant(microsecondsSinceEpoch: now.microsecondsSinceEpoch + 100_000)
        #expect(retry == [.keepRecorded, .recordIfUnfinished(at(.hospitalised, error: "down", attempts: 1, retryAt: retryAt)),
                          .wait(.milliseconds(100))])
        #expect(waiting.phase == .waiting && waiting.attempts == 1)
        let (reading, read) = step(.timerFired, waiting)
        #expect(read == [.readDurable] && reading.phase == .reading)

        #expect(step(.failed(FlowFailure("no"), startWritten: true), running).1 == [.keepRecorded, .recordEnd(at(.failed, error: "no"), ifUnfinished: false)])
        let parked = step(.failed(Bug(), startWritten: true), running)
        guard case .recordEnd(let state, ifUnfinished: false) = parked.1[1] else { Issue.record("\(parked.1)"); return }
        #expect(state.status == .hospitalised && state.retryAt == nil && parked.0.phase == .recording(state))
        // Out of retries: parked.
        let tired = step(.failed(TransientFlowError("down"), startWritten: true), self.state(.running, attempts: 2)).1
        #expect(tired == [.keepRecorded, .recordEnd(at(.hospitalised, error: "still failing after 2 retries: down", attempts: 2), ifUnfinished: false)])
        // A failed read has no run whose records to keep.
        #expect(step(.failed(TransientFlowError("down"), startWritten: true), self.state(.reading)).1.first != .keepRecorded)
    }

    @Test func aFailureBeforeTheStartIsDurableIsTreatedAsAnyOtherUnlessTheStartWasRefused() {
        let running = state(.running, startUnwritten: true)
        // The kept records carry the start; the waiter hears a failure only if they cannot be
        // written (the first outcome stands), and the end is recorded as for any flow.
        #expect(step(.failed(FlowFailure("no"), startWritten: false), running).1
                == [.keepRecorded, .failStart, .recordEnd(at(.failed, error: "no"), ifUnfinished: false)])
        let parked = step(.failed(Bug(), startWritten: false), running)
        #expect(parked.1.prefix(2) == [.keepRecorded, .failStart])
        guard case .recordEnd(let end, ifUnfinished: false) = parked.1.last else { Issue.record("\(parked.1)"); return }
        #expect(end.status == .hospitalised && parked.0.phase == .recording(end))
        // Refused, the flow never existed: nothing to record.
        let (ended, refused) = step(.failed(StartRefused(), startWritten: false), running)
        #expect(refused == [.keepRecorded, .failStart, .end] && ended.phase == .ended)
        let (waiting, retry) = step(.failed(TransientFlowError("down"), startWritten: false), running)
        #expect(retry.prefix(2) == [.keepRecorded, .failStart] && waiting.phase == .waiting)
        // Once durable, the start is the flow's: the hospital treats the failure as usual.
        #expect(!step(.failed(TransientFlowError("down"), startWritten: true), running).1.contains(.failStart))
    }

    @Test(arguments: [T.Phase.launched, .reading, .running, .ending(FlowState(status: .completed, attempts: 0, updatedAt: Instant(microsecondsSinceEpoch: 0))), .waiting])
    func anOperatorsKillOrParkCancelsTheRunAndIsRecordedWhenItStops(_ phase: T.Phase) {
        let (killed, cancel) = step(.kill, state(phase))
        #expect(cancel == [.cancel] && killed.operatorEnd == .kill)
        let (parked, _) = step(.park("look at it"), state(phase))
        #expect(parked.operatorEnd == .park("look at it"))
        // A kill asked for first stands against a later park.
        #expect(step(.park("later"), killed).0.operatorEnd == .kill)
        #expect(step(.kill, parked).0.operatorEnd == .kill)

        for (asked, recorded) in [(killed, at(.killed, error: T.killedMessage)), (parked, at(.hospitalised, error: "look at it"))] {
            var stopped = asked
            stopped.phase = phase == .waiting ? .waiting : .running
            let event: T.Event = phase == .waiting ? .waitCancelled : .failed(CancellationError(), startWritten: true)
            let (ended, actions) = step(event, stopped)
            #expect(actions.last == .recordEnd(recorded, ifUnfinished: false) && ended.phase == .recording(recorded))
        }
    }

    /// After the end's commit failed, a kill or the hospital's verdict is recorded only over an
    /// unfinished flow: the end may have been made (its answer lost), and a durable end stands.
    @Test func whatFollowsAFailedEndIsRecordedOnlyOverAnUnfinishedFlow() {
        let ending = state(.ending(FlowState(status: .completed, result: Array("1".utf8), attempts: 0, updatedAt: now)))
        let (killed, _) = step(.kill, ending)
        #expect(step(.failed(TransientFlowError("answer lost"), startWritten: true), killed).1
                == [.recordEnd(at(.killed, error: T.killedMessage), ifUnfinished: true)])
        #expect(step(.failed(FlowFailure("no"), startWritten: true), ending).1 == [.recordEnd(at(.failed, error: "no"), ifUnfinished: true)])
        // In a run, nothing was ended: the record is made as it stands.
        #expect(step(.failed(FlowFailure("no"), startWritten: true), state(.running)).1
                .contains(.recordEnd(at(.failed, error: "no"), ifUnfinished: false)))
    }

    /// The end a failed run came to is recorded until the store has it: a failed record is tried
    /// again after the hospital's delay (the session simulation's seed 635 left a failed responder
    /// unrecorded, its counterparty waiting, until its node restarted). An engine that stops
    /// leaves it to the next owner.
    @Test func anEndWhoseRecordFailsIsRecordedAgain() {
        let failed = at(.failed, error: "no")
        let (recording, record) = step(.failed(FlowFailure("no"), startWritten: true), state(.running))
        #expect(record.last == .recordEnd(failed, ifUnfinished: false) && recording.phase == .recording(failed))
        let (waiting, wait) = step(.failed(TransientFlowError("down"), startWritten: true), recording)
        #expect(wait == [.wait(.milliseconds(100))] && waiting.phase == .recordWaiting(failed) && waiting.attempts == 1)
        // The record may have been made before its answer was lost: only over an unfinished flow.
        let (again, retry) = step(.timerFired, waiting)
        #expect(retry == [.recordEnd(failed, ifUnfinished: true)] && again.phase == .recording(failed))
        let (ended, end) = step(.committed, again)
        #expect(end == [.end] && ended.phase == .ended)
        // Stopping: left as it stands.
        var stopping = recording
        stopping.stopping = true
        #expect(step(.failed(TransientFlowError("down"), startWritten: true), stopping).1 == [.end])
        #expect(step(.waitCancelled, waiting).1 == [.end])
    }

    @Test func anEngineThatStopsLeavesTheFlowAsItStands() {
        let (stopping, cancel) = step(.stop, state(.running))
        #expect(cancel == [.cancel] && stopping.stopping)
        #expect(step(.failed(CancellationError(), startWritten: true), stopping).1 == [.keepRecorded, .end])
        var waiting = stopping
        waiting.phase = .waiting
        #expect(step(.waitCancelled, waiting).1 == [.end])
        #expect(step(.waitCancelled, state(.waiting)).1 == [.end])
    }

    static let phases: [T.Phase] = [.launched, .reading, .running, .ending(FlowState(status: .completed, attempts: 0, updatedAt: Instant(microsecondsSinceEpoch: 0))), .waiting,
                                    .recording(FlowState(status: .failed, attempts: 0, updatedAt: Instant(microsecondsSinceEpoch: 0))),
                                    .recordWaiting(FlowState(status: .failed, attempts: 0, updatedAt: Instant(microsecondsSinceEpoch: 0))), .ended]

    func events() -> [(String, T.Event)] {
        var stored = record
        stored.status = .failed
        return [("begin", .begin(journal: journal)), ("beginUnknown", .begin(journal: nil)), ("undecodable", .undecodable("x")),
                ("absent", .read(.absent)), ("ended", .read(.ended(stored))), ("unfinished", .read(.unfinished([]))),
                ("returned", .returned([])), ("committed", .committed), ("failed", .failed(Bug(), startWritten: true)),
                ("timerFired", .timerFired), ("waitCancelled", .waitCancelled), ("kill", .kill), ("park", .park("p")), ("stop", .stop)]
    }

    /// The events each phase answers; every other event leaves the state as it is and asks for nothing.
    func answers(_ phase: T.Phase) -> Set<String> {
        let operators: Set<String> = ["kill", "park", "stop"]
        switch phase {
        case .launched: return operators.union(["begin", "beginUnknown", "undecodable"])
        case .reading: return operators.union(["absent", "ended", "unfinished", "failed"])
        case .running: return operators.union(["returned", "failed"])
        case .ending: return operators.union(["committed", "failed"])
        case .waiting: return operators.union(["timerFired", "waitCancelled"])
        case .recording: return ["committed", "failed", "stop"]  // the run has ended: kill and park come too late
        case .recordWaiting: return ["timerFired", "waitCancelled", "stop"]
        case .ended: return []
        }
    }

    @Test(arguments: phases) func everyEventInEveryPhase(_ phase: T.Phase) {
        let before = state(phase)
        for (name, event) in events() {
            let (after, actions) = step(event, before)
            if answers(phase).contains(name) {
                #expect(!actions.isEmpty, "\(name) in \(phase)")
            } else {
                #expect(after == before && actions.isEmpty, "\(name) in \(phase)")
            }
            // Whatever ends the flow's task says so last, and nothing follows an end.
            if let end = actions.firstIndex(of: .end) { #expect(end == actions.count - 1 && after.phase == .ended, "\(name) in \(phase)") }
        }
    }
}
