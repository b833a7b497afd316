import Coordination
import Testing
import ZooKeeper
import ZooKeeperElection

/// The ZooKeeper election's decisions driven with scripted replies, no server.
@Suite(.timeLimit(.minutes(10))) struct ZooKeeperProgramTests {
    typealias Place = ZooKeeperProgram.Place
    static let session: Int64 = 0x51
    static let other: Int64 = 0x77
    let leader = RoundRequest(healthy: true, mayAcquire: true, standingAside: false, highestSeen: .zero)

    /// What a program sent, and how it ended (view and place nil: it sent a request the script
    /// does not expect there, or the script ran out).
    struct Run {
        var sent: [ZooKeeperRequest] = []
        var view: ElectionView?
        var place: Place?
        var error: (any Error)?
    }

    /// Runs `action` from `place`, answering each request with the script's reply while it is the
    /// request the script expects next. Expects the whole script to be used.
    func drive(_ action: ZooKeeperProgram.Action, from place: Place = Place(), _ script: [(ZooKeeperRequest, ZooKeeperReply)]) -> Run {
        var program = ZooKeeperProgram(candidate: Candidate(id: "A"), session: Self.session, action: action, place: place)
        var run = Run()
        var script = script[...]
        while true {
            switch program.next() {
            case .send(let request):
                run.sent.append(request)
                guard let (expected, reply) = script.first, expected == request else {
                    Issue.record("sent \(request) where the script expects \(script.first.map { "\($0.0)" } ?? "nothing")")
                    return run
                }
                script.removeFirst()
                program.receive(reply)
            case .finished(let view, let place):
                (run.view, run.place) = (view, place)
                #expect(script.isEmpty, "requests expected but not sent: \(script.map(\.0))")
                return run
            case .failed(let error, let place):
                (run.error, run.place) = (error, place)
                #expect(script.isEmpty, "requests expected but not sent: \(script.map(\.0))")
                return run
            }
        }
    }

    static func epoch(_ record: EpochRecord?, mzxid: Int64 = 0, version: Int32 = 0) -> (ZooKeeperRequest, ZooKeeperReply) {
        (.readEpoch, .data(record?.bytes ?? [], mzxid: mzxid, version: version))
    }

    /// The two settings a round reads after the epoch.
    static func settings(switchover: String? = nil, preferred: String? = nil) -> [(ZooKeeperRequest, ZooKeeperReply)] {
        [(.read(.switchover), .data(Array((switchover ?? "").utf8), mzxid: 1, version: 0)),
         (.read(.preferred), .data(Array((preferred ?? "").utf8), mzxid: 1, version: 0))]
    }

    @Test func aFreshCandidateCreatesItsNodeClaimsAndLeads() {
        let node = "c-A-0000000001"
        let run = drive(.round(leader), [
            (.listCandidates, .children([])),
            (.create(prefix: "c-A-"), .created(node: node)),
            (.listCandidates, .children([node])),
            Self.epoch(nil, mzxid: 5),
        ] + Self.settings(preferred: "A") + [
            (.claim(node: node, record: EpochRecord(leader: "A", node: node), version: 0), .claimed(mzxid: 9)),
        ])
        #expect(run.view == ElectionView(holder: "A", epoch: Epoch(9), preferred: "A", target: nil, standing: ["A"],
                                         incarnations: ["A": "c-A-0000000001"], duplicate: false))
        #expect(run.place == Place(node: node))
    }

    /// Found by the simulation (seed 25): B created its node after A listed the queue and before
    /// A created its own, so B's sequence is lower. A lists again after creating, does not claim,
    /// and watches B. Before, A claimed on its first listing, and A and B led at once.
    @Test func aNodeCreatedBetweenOurListingAndOurCreateGoesFirst() {
        let early = "c-B-0000000001", mine = "c-A-0000000002"
        let run = drive(.round(leader), [
            (.listCandidates, .children([])),
            (.create(prefix: "c-A-"), .created(node: mine)),
            (.listCandidates, .children([early, mine])),
            Self.epoch(EpochRecord(leader: "B", node: early), mzxid: 7, version: 1),
        ] + Self.settings() + [
            (.watch(node: early), .exists(ephemeralOwner: Self.other)),
        ])
        #expect(run.view == ElectionView(holder: "B", epoch: Epoch(7), preferred: nil, target: nil, standing: ["A", "B"],
                                         incarnations: ["A": "c-A-0000000002", "B": "c-B-0000000001"], duplicate: false))
        #expect(run.place == Place(node: mine, watching: early))
    }

    @Test func aNodeWhoseCreateReplyWasLostIsAdoptedNotCreatedAgain() {
        let mine = "c-A-0000000003", first = "c-B-0000000001"
        let run = drive(.round(leader), [
            (.listCandidates, .children([mine, first])),
            (.exists(node: mine), .exists(ephemeralOwner: Self.session)),
            Self.epoch(EpochRecord(leader: "B", node: first), mzxid: 4),
        ] + Self.settings() + [
            (.watch(node: first), .exists(ephemeralOwner: Self.other)),
        ])
        #expect(run.view?.holder == "B" && run.view?.duplicate == false)
        #expect(run.place == Place(node: mine, watching: first))
    }

    @Test func aForeignNodeWithOurIdThatCameFirstMakesUsADuplicate() {
        let foreign = "c-A-0000000002", mine = "c-A-0000000005"
        let run = drive(.round(leader), from: Place(node: mine), [
            (.listCandidates, .children([mine, foreign])),
            (.exists(node: foreign), .exists(ephemeralOwner: Self.other)),
            (.delete(node: mine), .done),
            Self.epoch(EpochRecord(leader: "A", node: foreign), mzxid: 6),
        ] + Self.settings())
        #expect(run.view?.duplicate == true)
        #expect(run.place == Place())
    }

    @Test func aClaimWhoseCheckFailsStandsAgainAndOneThatLostTheRaceKeepsItsPlace() {
        let mine = "c-A-0000000001"
        func claim(failingAt index: Int) -> Run {
            let failure = ZooKeeperError.multiFailed(index: index, error: index == 0 ? .noNode : .badVersion, results: [])
            return drive(.round(leader), from: Place(node: mine), [(.listCandidates, .children([mine])), Self.epoch(nil)] + Self.settings() + [
                (.claim(node: mine, record: EpochRecord(leader: "A", node: mine), version: 0), .failed(failure)),
            ])
        }
        let gone = claim(failingAt: 0)
        #expect(gone.view == ElectionView(holder: nil, epoch: .zero, preferred: nil, target: nil, standing: ["A"],
                                          incarnations: ["A": "c-A-0000000001"], duplicate: false))
        #expect(gone.place == Place())
        #expect(claim(failingAt: 1).place == Place(node: mine))
    }

    @Test func theFirstCandidateGoesToTheBackWhileTheSwitchoverTargetWaitsBehindIt() {
        let mine = "c-A-0000000001", target = "c-B-0000000002", back = "c-A-0000000003"
        let run = drive(.round(leader), from: Place(node: mine), [(.listCandidates, .children([mine, target])), Self.epoch(nil)]
            + Self.settings(switchover: "B") + [
                (.delete(node: mine), .done),
                (.create(prefix: "c-A-"), .created(node: back)),
                (.listCandidates, .children([target, back])),
                (.watch(node: target), .exists(ephemeralOwner: Self.other)),
            ])
        #expect(run.view?.holder == nil && run.view?.target == "B")
        #expect(run.place == Place(node: back, watching: target))
    }

    @Test func thePredecessorIsWatchedOnceAndAVanishedOneIsNot() {
        let mine = "c-A-0000000005", before = "c-B-0000000002"
        let reads = [(.listCandidates, .children([before, mine])), Self.epoch(nil)] + Self.settings()
        let first = drive(.round(leader), from: Place(node: mine), reads + [(.watch(node: before), .exists(ephemeralOwner: Self.other))])
        #expect(first.place == Place(node: mine, watching: before))
        let again = drive(.round(leader), from: Place(node: mine, watching: before), reads)
        #expect(again.place == Place(node: mine, watching: before))
        let vanished = drive(.round(leader), from: Place(node: mine, watching: "c-C-0000000001"),
                             reads + [(.watch(node: before), .exists(ephemeralOwner: nil))])
        #expect(vanished.place == Place(node: mine))
    }

    @Test func releaseReservesForTheTargetAndAGoneNodeIsNoErrorToDelete() {
        let mine = "c-A-0000000001", back = "c-A-0000000004"
        let release = drive(.release(handOverTo: "B"), from: Place(node: mine), [
            (.write(.switchover, "B"), .done),
            (.delete(node: mine), .failed(ZooKeeperError.noNode)),
            (.create(prefix: "c-A-"), .created(node: back)),
        ])
        #expect(release.place == Place(node: back))
        let withdraw = drive(.withdraw, from: Place(node: mine), [(.delete(node: mine), .failed(ZooKeeperError.connectionLoss))])
        #expect(withdraw.error as? ZooKeeperError == .connectionLoss)
        #expect(withdraw.place == Place(node: mine))
    }
}
