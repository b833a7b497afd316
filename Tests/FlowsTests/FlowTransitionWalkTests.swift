import Flows
import HawserCore
import Sim
import Testing

/// `FlowTransition` under seeded random walks: a shell that answers each action with any outcome
/// the real one could report, and operators' kills, parks and stops at random moments. Whatever
/// happens, the flow's task ends, its outcome is recorded at most once (a failed record is tried
/// again), and what an operator or a stop asked for is respected.
@Suite(.timeLimit(.minutes(10))) struct FlowTransitionWalkTests {
    typealias T = FlowTransition

    struct Bug: Error {}

    @Test(arguments: 0..<300) func aWalkEndsOnceAndKeepsWhatWasAsked(_ seed: Int) {
        var random = SeededGenerator(seed: UInt64(seed))  // the same seed gives the same walk
        let policy = HospitalPolicy(initialDelay: .milliseconds(1), maxDelay: .milliseconds(4), maxAttempts: 3)
        var record = FlowRecord(id: FlowID("f"), clientRequestId: nil, flowName: "F", arguments: [],
                                createdAt: Instant(microsecondsSinceEpoch: 0), updatedAt: Instant(microsecondsSinceEpoch: 0))
        let startUnwritten = Bool.random(using: &random)
        var state = T.State(attempts: 0, startUnwritten: startUnwritten, clearsMarker: Bool.random(using: &random))
        var now = Instant(microsecondsSinceEpoch: 1_000_000)
        var event: T.Event = .begin(journal: Bool.random(using: &random) ? [] : nil)
        var cancelled = false, killed = false, stopped = false, ended = false
        var outcomes = 0
        var trace = [String]()

        func feed(_ event: T.Event) -> [T.Action] {
            let (next, actions) = T.transition(event, state, now: now, policy: policy)
            trace.append("\(event) -> \(actions)")
            state = next
            return actions
        }

        for _ in 0..<200 where !ended {
            // An operator or the engine, from another task, before the flow's task goes on.
            if UInt8.random(in: 0..<10, using: &random) == 0 {
                let outside: T.Event = [.kill, .park("look"), .stop].randomElement(using: &random)!
                // A kill or park after the run has come to its end is too late; a stop is not.
                let taken = feed(outside).contains(.cancel)
                if case .kill = outside, taken { killed = true }
                if case .stop = outside { stopped = true }
                if taken { cancelled = true }
            }
            now = Instant(microsecondsSinceEpoch: now.microsecondsSinceEpoch + Int64.random(in: -5_000...50_000, using: &random))
            var next: T.Event?
            let actions = feed(event)
            for (index, action) in actions.enumerated() {
                switch action {
                case .readDurable:
                    record.status = .completed
                    next = cancelled ? .failed(TransientFlowError("cancelled"), startWritten: false)
                        : [.read(.absent), .read(.ended(record)), .read(.unfinished([])), .read(.unfinished([])),
                           .failed(TransientFlowError("down"), startWritten: false)].randomElement(using: &random)!
                case .run:
                    next = cancelled ? .failed(CancellationError(), startWritten: Bool.random(using: &random))
                        : [.returned([]), .failed(TransientFlowError("down"), startWritten: Bool.random(using: &random)),
                           .failed(FlowFailure("no"), startWritten: true), .failed(Bug(), startWritten: Bool.random(using: &random))]
                            .randomElement(using: &random)!
                case .commitEnd:
                    next = Bool.random(using: &random) ? .committed : .failed(TransientFlowError("down"), startWritten: true)
                case .wait:
                    next = cancelled ? .waitCancelled : .timerFired
                case .recordEnd(let recorded, _):
                    if killed { #expect(recorded.status == .killed, "seed \(seed): \(trace)") }
                    if stopped && state.operatorEnd == nil { Issue.record("seed \(seed): a stopped flow's outcome was recorded: \(trace)") }
                    // The store may fail it; the machine tries again until it is made (counted once).
                    next = Bool.random(using: &random) ? .committed : .failed(TransientFlowError("down"), startWritten: true)
                    if case .committed? = next { outcomes += 1 }
                case .record(let recorded) where recorded.status.isTerminal || (recorded.status == .hospitalised && recorded.retryAt == nil):
                    outcomes += 1  // an undecodable flow parked
                case .announce, .announceStored:
                    outcomes += 1
                case .failStart:
                    #expect(startUnwritten, "seed \(seed): \(trace)")
                case .end:
                    #expect(index == actions.count - 1, "seed \(seed): \(trace)")
                    ended = true
                case .record, .recordIfUnfinished, .keepRecorded, .cancel:
                    break
                }
            }
            if let next { event = next } else { #expect(ended, "seed \(seed): no reply and no end: \(trace)") }
        }
        #expect(ended, "seed \(seed): the flow's task never ended: \(trace)")
        #expect(outcomes <= 1, "seed \(seed): \(outcomes) outcomes: \(trace)")
        #expect(state.phase == .ended)
        // Nothing reaches an ended flow any more.
        for late: T.Event in [.kill, .park("late"), .stop, .timerFired, .committed, .returned([]), .read(.absent)] {
            #expect(feed(late).isEmpty, "seed \(seed): \(late) after the end")
        }
    }
}
