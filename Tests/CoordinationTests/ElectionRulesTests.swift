import Coordination
import Testing
import ZooKeeperElection

@Suite struct ElectionRulesTests {
    @Test func nodeNamesCarryTheIdAndSequence() {
        #expect(ElectionRules.parse("c-node-a-0000000012") == .init(name: "c-node-a-0000000012", id: "node-a", sequence: 12))
        #expect(ElectionRules.parse("c--0000000012") == nil)
        #expect(ElectionRules.parse("x-a-0000000012") == nil)
        #expect(ElectionRules.parse("c-a-12") == nil)
    }

    @Test func theLowestSequenceLeadsAndEachOtherWatchesItsPredecessor() {
        let children = ["c-B-0000000007", "c-A-0000000003", "c-C-0000000010", "stray"]
        #expect(ElectionRules.decide(children: children, mine: "c-A-0000000003", target: nil) == .lead)
        #expect(ElectionRules.decide(children: children, mine: "c-B-0000000007", target: nil) == .watch("c-A-0000000003"))
        #expect(ElectionRules.decide(children: children, mine: "c-C-0000000010", target: nil) == .watch("c-B-0000000007"))
        #expect(ElectionRules.decide(children: children, mine: "c-A-0000000001", target: nil) == .missing)
        #expect(ElectionRules.expectedLeader(children: children, target: nil) == "A")
    }

    @Test func theFirstDefersToAStandingSwitchoverTargetOnly() {
        let children = ["c-A-0000000003", "c-B-0000000007"]
        #expect(ElectionRules.decide(children: children, mine: "c-A-0000000003", target: "B") == .deferTo("B"))
        #expect(ElectionRules.decide(children: children, mine: "c-A-0000000003", target: "C") == .lead)
        #expect(ElectionRules.decide(children: children, mine: "c-A-0000000003", target: "A") == .lead)
        #expect(ElectionRules.expectedLeader(children: children, target: "B") == "B")
    }

    @Test func everyNewLeaderNodeGetsAHigherEpochAndTheSameNodeKeepsItsOwn() {
        #expect(EpochRecord.claim(after: nil, node: "c-A-0000000001") == (Epoch(1), true))
        let record = EpochRecord(epoch: Epoch(4), leader: "A", node: "c-A-0000000001")
        #expect(EpochRecord.claim(after: record, node: "c-B-0000000002") == (Epoch(5), true))
        // The same candidate with a new node (it lost its session or requeued) is a new term.
        #expect(EpochRecord.claim(after: record, node: "c-A-0000000009") == (Epoch(5), true))
        #expect(EpochRecord.claim(after: record, node: "c-A-0000000001") == (Epoch(4), false))
        #expect(EpochRecord.decode(record.bytes) == record)
        #expect(EpochRecord.decode([]) == nil)
    }
}
