@testable import Sim
import Testing
import ZooKeeper

/// The in-memory ZooKeeper the election simulation runs against keeps ZooKeeper's rules: sequence
/// numbers, ephemeral nodes bound to sessions, all-or-nothing multis, versions, zxids, one-shot
/// watches, and expiry of sessions not heard from.
@Suite(.timeLimit(.minutes(10))) struct SimZooKeeperTests {
    @Test func ephemeralSequentialNodesGoWithTheirSessionInOneChange() throws {
        var zk = SimZooKeeper()
        let a = zk.openSession(timeoutNs: 1_000, nowNs: 0), b = zk.openSession(timeoutNs: 1_000, nowNs: 0)
        _ = try zk.create("/e", data: [], ephemeral: false, sequential: false, session: a)
        let first = try zk.create("/e/c-A-", data: [], ephemeral: true, sequential: true, session: a)
        let second = try zk.create("/e/c-B-", data: [], ephemeral: true, sequential: true, session: b)
        #expect(first == "/e/c-A-0000000000" && second == "/e/c-B-0000000001")
        #expect(try zk.exists(second, session: a)?.ephemeralOwner == b)
        let watched = try zk.existsAndWatch(first, session: b)
        #expect(watched != nil)
        let before = zk.zxid
        zk.end(a)
        #expect(zk.zxid == before + 1)
        #expect(try zk.getChildren("/e", session: b) == ["c-B-0000000001"])
        let fired = zk.takeFired(), again = zk.takeFired()
        #expect(fired == [SimZooKeeper.Fired(session: b, path: first)])
        #expect(again.isEmpty, "a watch fires once")
        // The next sequence number is never one handed out before.
        let third = try zk.create("/e/c-B-", data: [], ephemeral: true, sequential: true, session: b)
        #expect(third == "/e/c-B-0000000003")
        #expect(throws: ZooKeeperError.sessionExpired) { try zk.getChildren("/e", session: a) }
    }

    @Test func aMultiIsAppliedWholeWithOneZxidOrNotAtAll() throws {
        var zk = SimZooKeeper()
        let s = zk.openSession(timeoutNs: 1_000, nowNs: 0)
        _ = try zk.create("/epoch", data: [], ephemeral: false, sequential: false, session: s)
        let node = try zk.create("/n", data: [], ephemeral: true, sequential: false, session: s)
        let version = try zk.getData("/epoch", session: s).stat.version
        let results = try zk.multi([.check(path: node, version: -1), .setData(path: "/epoch", data: [1], version: version)], session: s)
        guard case .setData(let stat) = results.last else { Issue.record("\(results)"); return }
        #expect(stat.mzxid == zk.zxid && stat.version == version + 1)
        // A stale version, or a missing node, fails the whole multi and changes nothing.
        let zxid = zk.zxid
        var stale: ZooKeeperError?
        do { _ = try zk.multi([.check(path: node, version: -1), .setData(path: "/epoch", data: [2], version: version)], session: s) } catch { stale = error }
        #expect(stale == .multiFailed(index: 1, error: .badVersion, results: []))
        try zk.delete(node, session: s)
        var gone: ZooKeeperError?
        do { _ = try zk.multi([.check(path: node, version: -1), .setData(path: "/epoch", data: [3], version: -1)], session: s) } catch { gone = error }
        #expect(gone == .multiFailed(index: 0, error: .noNode, results: []))
        #expect(try zk.getData("/epoch", session: s).data == [1])
        #expect(zk.zxid == zxid + 1, "only the delete changed the tree")
    }

    @Test func aSessionExpiresOnlyWhenNotHeardFromForItsTimeout() throws {
        var zk = SimZooKeeper()
        let s = zk.openSession(timeoutNs: 1_000, nowNs: 0)
        _ = try zk.create("/n", data: [], ephemeral: true, sequential: false, session: s)
        let early = zk.expireIdle(nowNs: 999)
        let heard = zk.heard(s, nowNs: 900)
        let stillAlive = zk.expireIdle(nowNs: 1_899)
        let expired = zk.expireIdle(nowNs: 1_900)
        let heardAfter = zk.heard(s, nowNs: 1_901)
        #expect(early.isEmpty && heard && stillAlive.isEmpty)
        #expect(expired == [s] && !heardAfter)
        #expect(zk.nodes["/n"] == nil)
    }
}
