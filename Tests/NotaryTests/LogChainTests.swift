import HawserCore
import HawserTestSupport
@testable import Notary
import Testing

/// The chain rules: an entry is applied only at the position it names and after the entry it names.
@Suite(.timeLimit(.minutes(10))) struct LogChainTests {
    let codec = ReplicaCodec(notaryKey: notaryKey)

    func entry(at position: UInt64, claims claimed: UInt64? = nil, after previous: SecureHash, sequencer: String = "r0") -> LogEntry {
        LogEntry(position: position, payload: codec.entry([], time: Instant(microsecondsSinceEpoch: 1), position: claimed ?? position,
                                                          previous: previous, sequencer: sequencer))
    }

    func verdict(_ entry: LogEntry, after head: ChainHead) -> LogChain.Verdict {
        LogChain.check(entry, codec.batch(fromEntry: entry.payload), entryHash: .sha256(entry.payload), after: head)
    }

    @Test func anEntryThatNamesItsPlaceAndItsPredecessorContinuesTheChain() {
        let first = entry(at: 1, after: .zero)
        #expect(verdict(first, after: .genesis) == .next)
        let head = ChainHead(position: 1, entryHash: .sha256(first.payload), stateHash: .zero)
        #expect(verdict(entry(at: 2, after: head.entryHash), after: head) == .next)
    }

    @Test func anEntryAfterAnotherPredecessorIsAFork() {
        let head = ChainHead(position: 1, entryHash: .sha256([1]), stateHash: .zero)
        guard case .broken(let found) = verdict(entry(at: 2, after: .sha256([2]), sequencer: "r2"), after: head) else {
            Issue.record("a fork must break the chain")
            return
        }
        #expect(found.kind == .fork && found.position == 2 && found.claimedPrevious == .sha256([2]))
        #expect(found.expectedPrevious == head.entryHash && found.sequencer == "r2")
        #expect(found.description.contains("the log forked"))
    }

    @Test func anEntryThatNamesALaterPlaceOrArrivesOutOfTurnIsAGap() {
        let head = ChainHead(position: 4, entryHash: .sha256([4]), stateHash: .zero)
        // Entry 5 was lost: the entry written as 6 arrives at 5.
        guard case .broken(let lost) = verdict(entry(at: 5, claims: 6, after: .sha256([5])), after: head) else {
            Issue.record("a lost entry must break the chain")
            return
        }
        #expect(lost.kind == .gap && lost.claimedPosition == 6)
        // The log handed out position 7 after 4.
        guard case .broken(let skipped) = verdict(entry(at: 7, after: head.entryHash), after: head) else {
            Issue.record("a skipped position must break the chain")
            return
        }
        #expect(skipped.kind == .gap)
    }

    @Test func anEntryThatLostTheRaceForItsPlaceIsStale() {
        // Two appenders expected the log to end at 4; a server that does not enforce the
        // condition stored both, the second at 6.
        let head = ChainHead(position: 5, entryHash: .sha256([5]), stateHash: .zero)
        #expect(verdict(entry(at: 6, claims: 5, after: .sha256([4])), after: head) == .stale)
    }

    @Test func anythingButAnAuthenticChainedEntryIsUnchained() {
        let tampered = { () -> LogEntry in
            var e = entry(at: 1, after: .zero)
            e.payload[e.payload.count / 2] ^= 1
            return e
        }()
        let other = ReplicaCodec(notaryKey: SigningKey(seed: [UInt8](repeating: 3, count: 32))!)
        let foreign = LogEntry(position: 1, payload: other.entry([], time: Instant(microsecondsSinceEpoch: 1), position: 1,
                                                                 previous: .zero, sequencer: "x"))
        for bad in [LogEntry(position: 1, payload: [1, 2, 3]), tampered, foreign] {
            guard case .broken(let found) = verdict(bad, after: .genesis) else {
                Issue.record("an entry that is not authentic must break the chain")
                continue
            }
            #expect(found.kind == .unchained)
        }
    }

    @Test func theStateHashCoversTheEntryAndItsOutcomesInOrder() {
        let a = LogChain.nextState(.zero, entryHash: .sha256([1]), outcomes: [.committed, .conflict([])])
        #expect(a == LogChain.nextState(.zero, entryHash: .sha256([1]), outcomes: [.committed, .conflict([])]))
        #expect(a != LogChain.nextState(.zero, entryHash: .sha256([1]), outcomes: [.conflict([]), .committed]))
        #expect(a != LogChain.nextState(.zero, entryHash: .sha256([2]), outcomes: [.committed, .conflict([])]))
        #expect(a != LogChain.nextState(.sha256([0]), entryHash: .sha256([1]), outcomes: [.committed, .conflict([])]))
    }

    @Test func reportsAndForwardedBatchesAreAuthenticated() {
        let report = ReplicaReport(replica: "r1", instance: 42, head: ChainHead(position: 9, entryHash: .sha256([9]), stateHash: .sha256([8])),
                                   status: .ready)
        #expect(codec.report(codec.message(report)) == report)
        #expect(ReplicaCodec(notaryKey: alice).report(codec.message(report)) == nil, "another key's replicas cannot read it as theirs")
        var ids = Ids(seed: 1)
        let requests = [request(ids.hash(), inputs: [ids.ref()])]
        #expect(codec.requests(fromForwarded: codec.forwarded(requests)) == requests)
        #expect(codec.requests(fromForwarded: codec.entry(requests, time: Instant(microsecondsSinceEpoch: 1), position: 1,
                                                          previous: .zero, sequencer: "r0")) == nil,
                "a log entry is not a forwarded batch (each kind has its own key)")
    }
}
