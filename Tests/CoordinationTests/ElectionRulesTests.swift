import Coordination
import Testing
import ZooKeeper
import ZooKeeperElection

@Suite(.timeLimit(.minutes(10))) struct ElectionRulesTests {
    @Test func nodeNamesCarryTheIdAndSequence() {
        #expect(ElectionRules.parse("c-node-a-0000000012") == .init(name: "c-node-a-0000000012", id: "node-a", sequence: 12))
        #expect(ElectionRules.parse("c--0000000012") == nil)
        #expect(ElectionRules.parse("x-a-0000000012") == nil)
        #expect(ElectionRules.parse("c-a-12") == nil)
    }

    @Test func theLowestSequenceLeadsAndEachOtherWatchesItsPredecessor() {
        let queue = ElectionRules.queue(["c-B-0000000007", "c-A-0000000003", "c-C-0000000010", "stray"])
        #expect(queue.map(\.id) == ["A", "B", "C"])
        #expect(ElectionRules.predecessor(of: "c-A-0000000003", in: queue) == nil)
        #expect(ElectionRules.predecessor(of: "c-C-0000000010", in: queue)?.name == "c-B-0000000007")
    }

    @Test func theRecordNamesTheLeaderOnlyWhileItsNodeIsFirst() {
        let queue = ElectionRules.queue(["c-A-0000000003", "c-B-0000000007"])
        #expect(ElectionRules.leader(queue: queue, record: EpochRecord(leader: "A", node: "c-A-0000000003")) == "A")
        #expect(ElectionRules.leader(queue: queue, record: EpochRecord(leader: "B", node: "c-B-0000000007")) == nil)
        #expect(ElectionRules.leader(queue: queue, record: nil) == nil)
        let record = EpochRecord(leader: "A", node: "c-A-0000000003")
        #expect(EpochRecord.decode(record.bytes) == record)
        // The same bytes in every process: keys in order, whatever the process's hash seed.
        #expect(String(decoding: record.bytes, as: UTF8.self) == #"{"leader":"A","node":"c-A-0000000003"}"#)
        #expect(EpochRecord.decode([]) == nil)
        #expect(EpochRecord.epoch(mzxid: 0x1_0000_0005) == Epoch(4_294_967_301))
    }

    @Test func zooKeeperSettingsNeedPortsAndCredentials() {
        let credentials = ZooKeeperCredentials(user: "hawser", password: "s3cret")
        #expect(ZooKeeperElectionConfiguration(connectString: "127.0.0.1:2181,[::1]:2182", credentials: credentials).problems().isEmpty)
        for bad in ["foo", "127.0.0.1:2181,bar", "", "a:2181/chroot"] {
            let problems = ZooKeeperElectionConfiguration(connectString: bad, credentials: credentials).problems()
            #expect(problems.count == 1 && problems[0].contains("every server with its port"), "\(bad)")
        }
        let open = ZooKeeperElectionConfiguration(connectString: "h:1", credentials: ZooKeeperCredentials(user: "", password: ""))
        #expect(open.problems() == ["zookeeper credentials must be user:password with a user (no ':') and a password, both non-empty"])
        #expect(ZooKeeperCredentials.parse("hawser:pa:ss\n") == ZooKeeperCredentials(user: "hawser", password: "pa:ss"))
        #expect(ZooKeeperCredentials.parse("no colon") == nil)
        #expect(!"\(credentials)".contains("s3cret"))
        #expect(credentials.acl == [ACL(permissions: .all, id: .digest(user: "hawser", password: "s3cret"))])
    }
}
