import Coordination
import HawserCore
import HawserWire
@testable import Notary
import Testing
import Uniqueness

/// The replica's and the appender's decisions as the shells and the simulator drive them
/// (`ReplicaStep`, `AppenderCore`): no log, no store, time as an input.
@Suite(.timeLimit(.minutes(10))) struct ReplicaCoresTests {
    let codec = ReplicaCodec(notaryKey: notaryKey)
    let state = StateRef(txId: .sha256([42]), index: 0)

    /// An appender for `me` whose tail is `head`.
    func appender(_ me: String = "r0", at head: ChainHead = .genesis) -> AppenderCore {
        var core = AppenderCore(me: me, codec: codec)
        _ = core.caughtUp(head, confirmed: head.position)
        return core
    }

    @Test func aPassAppliesTheChainSkipsAStaleEntryAndStopsAtABreak() {
        var sequencer = appender()
        let first = sequencer.entry([request(.sha256([1]), inputs: [state])], time: Instant(microsecondsSinceEpoch: 1))
        sequencer.appended(first)
        // A second entry that also expected the log to end at 0 (it lost the race, and a server
        // that does not enforce the condition stored it at 2), then one that names another predecessor.
        let stale = appender("r1").entry([request(.sha256([2]), inputs: [state])], time: Instant(microsecondsSinceEpoch: 2))
        let forked = appender("r2", at: ChainHead(position: 2, entryHash: .sha256([9]), stateHash: .zero))
            .entry([request(.sha256([3]), inputs: [state])], time: Instant(microsecondsSinceEpoch: 3))
        let entries = [first, stale, forked].enumerated().map { LogEntry(position: UInt64($0.offset + 1), payload: $0.element.payload) }
        let step = ReplicaStep(entries, after: .genesis, codec: codec)
        #expect(step.consumed.map(\.position) == [1, 2] && step.consumed[1].batch == nil)
        #expect(step.notes == [.stale(position: 2, claimed: 1, sequencer: "r1")])
        #expect(step.broken?.kind == .fork && step.broken?.position == 3)
        #expect(step.requested == [.sha256([1])] && step.refs == [state])

        let applied = step.decide(UniquenessView())
        #expect(applied.decision.outcomes == [.committed])
        #expect(applied.heads.map(\.position) == [1, 2] && applied.heads[1].entryHash == first.hash)
        #expect(applied.heads[0].stateHash == LogChain.nextState(.zero, entryHash: first.hash, outcomes: [.committed]))
        #expect(applied.heads[1].stateHash == applied.heads[0].stateHash, "a stale entry changes no state")
    }

    @Test func anAppenderSequencesForwardsOrFindsNobody() {
        let core = appender("r1")
        #expect(core.target(forwarded: false, sequencer: "r1") == .here)
        #expect(core.target(forwarded: false, sequencer: "r0") == .forward("r0"))
        #expect(core.target(forwarded: false, sequencer: nil) == .nobody)
        #expect(core.target(forwarded: true, sequencer: "r0") == .here, "forwarded requests are appended here")
    }

    @Test func anEntryNamesItsPlaceOnTheVerifiedChainAndAConflictIsJudgedByTheHead() {
        let head = ChainHead(position: 7, entryHash: .sha256([7]), stateHash: .sha256([70]))
        var core = appender(at: head)
        let entry = core.entry([request(.sha256([1]), inputs: [state])], time: Instant(microsecondsSinceEpoch: 5))
        let batch = codec.batch(fromEntry: entry.payload)
        #expect(entry.after == 7 && batch?.position == 8 && batch?.previous == head.entryHash && batch?.sequencer == "r0")
        #expect(entry.landed(ChainHead(position: 8, entryHash: entry.hash, stateHash: .zero)))
        #expect(!entry.landed(ChainHead(position: 8, entryHash: .sha256([8]), stateHash: .zero)) && !entry.landed(nil))
        core.forget()
        #expect(core.tail == nil, "after a failed try the end is learnt again")
    }

    @Test func theAppenderBuildsOnlyOnAHeadAMajorityConfirmed() {
        // Its replica applied an entry at 5 that the others may not hold (its log server diverged).
        let head = ChainHead(position: 5, entryHash: .sha256([5]), stateHash: .zero)
        var core = AppenderCore(me: "r0", codec: codec)
        #expect(!core.caughtUp(head, confirmed: 4) && core.tail == nil)
        #expect(core.caughtUp(head, confirmed: 5) && core.tail == AppenderCore.Tail(position: 5, entryHash: head.entryHash))
    }

    @Test func aLogThatEndsBeforeTheAppliedHeadIsDiverged() {
        let head = ChainHead(position: 5, entryHash: .sha256([5]), stateHash: .zero)
        #expect(AppenderCore.resync(logEnd: 5, applied: head) == .catchUp(through: 5))
        #expect(AppenderCore.resync(logEnd: 9, applied: head) == .catchUp(through: 9))
        guard case .diverged(let evidence) = AppenderCore.resync(logEnd: 3, applied: head) else {
            Issue.record("a log that lost applied entries must stop the appender")
            return
        }
        #expect(evidence.kind == .truncated && evidence.position == 3 && evidence.claimedPosition == 5)
        #expect(AppenderCore.diverged(evidence).code == .logDiverged)
    }

    @Test func triesBackOffUntilTheDeadlineThenSayWhy() {
        var retry = AppenderCore.Retry(timeout: .seconds(1))
        var waits = [Duration]()
        while case .wait(let backoff) = retry.next(after: nil, elapsed: waits.reduce(.zero, +)) { waits.append(backoff) }
        #expect(waits.prefix(6) == [.milliseconds(10), .milliseconds(20), .milliseconds(40), .milliseconds(80), .milliseconds(160), .milliseconds(200)])
        #expect(waits.reduce(.zero, +) < .seconds(1))
        guard case .giveUp(let noQuorum) = retry.next(after: nil, elapsed: .seconds(1)),
              case .giveUp(let timedOut) = retry.next(after: LogAppendConflict(expected: 1), elapsed: .seconds(1)) else {
            Issue.record("past the deadline the group gives up")
            return
        }
        #expect(noQuorum.code == .noQuorum && timedOut.code == .timeout)
        // It names the append time-out, not only the last try's remnant of it (found from
        // outside: "learning the log's end took longer than 0.009260072 seconds").
        #expect(timedOut.message.contains("in the \(retry.timeout) its tries may take"), "\(timedOut)")
        // The sequencer's own time-out, forwarded back, is passed on as it is (found from outside:
        // "the log did not take the request in time (timeout: the log did not take ...").
        let sequencers = AppenderCore.timedOut(waitingFor: .seconds(10))
        guard case .giveUp(let passedOn) = retry.next(after: sequencers, elapsed: .seconds(1)) else {
            Issue.record("past the deadline the group gives up")
            return
        }
        #expect(passedOn == sequencers)
        // A try cut by its deadline is said plainly, not as a coordination store's failure (found from outside).
        guard case .giveUp(let cut) = retry.next(after: CoordinationError.unavailable("learning the log's end took longer than 113 ms"),
                                                 elapsed: .seconds(1)) else {
            Issue.record("past the deadline the group gives up")
            return
        }
        #expect(cut.message.contains("in the time left: learning the log's end took longer than 113 ms)"), "\(cut)")
        #expect(sequencers.message.components(separatedBy: "in time").count == 2 && !sequencers.message.contains("coordination"), "\(sequencers)")
        #expect(AppenderCore.fatal(APIError(.batchTooLarge, "x"))?.code == .batchTooLarge)
        #expect(AppenderCore.fatal(APIError(.logDiverged, "x")) == nil, "a 503 from the sequencer: another may take it")
        #expect(AppenderCore.fatal(CancellationError())?.code == .shuttingDown)
        #expect(AppenderCore.fatal(LogAppendConflict(expected: 1)) == nil)
    }
}
