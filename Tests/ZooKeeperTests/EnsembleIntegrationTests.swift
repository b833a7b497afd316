import Foundation
import HawserTestSupport
import Testing
@testable import ZooKeeper

/// Against a real 3-server ensemble: one per suite, started and stopped by `EnsembleTrait`.
/// The session-survival test kills a server and restarts it before it returns.
@Suite(.serialized, .enabled(if: ZooKeeperEnsemble.isAvailable, "needs the Debian zookeeper package and a JDK"),
       .zooKeeperEnsemble, .timeLimit(.minutes(3)))
struct EnsembleIntegrationTests {
    let ensemble: ZooKeeperEnsemble
    /// A fresh parent path per test.
    let root = "/test-\(UUID().uuidString.prefix(8).lowercased())"

    init() throws {
        ensemble = try #require(ZooKeeperEnsemble.current)
    }

    func connect(sessionTimeout: Duration = .seconds(6), session: SessionCredentials? = nil,
                 servers: [ServerAddress]? = nil, shuffle: Bool = true) async throws -> ZooKeeperClient {
        var configuration = ZooKeeperConfiguration(servers: servers ?? ensemble.addresses)
        configuration.shuffleServers = shuffle
        configuration.sessionTimeout = sessionTimeout
        configuration.session = session
        configuration.initialConnectTimeout = .seconds(10)
        return try await ZooKeeperClient.connect(configuration: configuration)
    }

    @Test func crudWithVersions() async throws {
        try await withZooKeeperClient(configuration: ZooKeeperConfiguration(connectString: ensemble.connectString)) { zk in
            #expect(zk.negotiatedTimeout == .seconds(10))
            #expect(try await zk.create(root, data: Array("v0".utf8)) == root)
            let (data, stat) = try await zk.getData(root)
            #expect(data == Array("v0".utf8) && stat.version == 0 && stat.dataLength == 2 && stat.ephemeralOwner == 0)
            await #expect(throws: ZooKeeperError.nodeExists) { try await zk.create(root) }

            let updated = try await zk.setData(root, data: Array("v1".utf8), version: 0)
            #expect(updated.version == 1)
            await #expect(throws: ZooKeeperError.badVersion) { try await zk.setData(root, data: [], version: 0) }
            #expect(try await zk.setData(root, data: Array("v2".utf8)).version == 2)
            #expect(try await zk.getData(root).data == Array("v2".utf8))

            try await zk.create("\(root)/a")
            try await zk.create("\(root)/b", data: [1, 2, 3])
            let (children, parent) = try await zk.getChildren(root)
            #expect(children.sorted() == ["a", "b"] && parent.numChildren == 2)
            await #expect(throws: ZooKeeperError.notEmpty) { try await zk.delete(root) }
            await #expect(throws: ZooKeeperError.noNode) { try await zk.create("\(root)/missing/child") }

            await #expect(throws: ZooKeeperError.badVersion) { try await zk.delete("\(root)/b", version: 5) }
            try await zk.delete("\(root)/b", version: 0)
            #expect(try await zk.exists("\(root)/b") == nil)
            await #expect(throws: ZooKeeperError.noNode) { try await zk.getData("\(root)/b") }
            await #expect(throws: ZooKeeperError.badArguments) { try await zk.getData("relative") }
            try await zk.sync(root)
            #expect(try await zk.exists("\(root)/a")?.version == 0)
        }
    }

    @Test func sequentialEphemeralAndContainerNodes() async throws {
        let zk = try await connect()
        try await zk.create(root)
        let first = try await zk.create("\(root)/job-", mode: .persistentSequential)
        let second = try await zk.create("\(root)/job-", mode: .persistentSequential)
        #expect(first.hasPrefix("\(root)/job-") && first.count == "\(root)/job-".count + 10)
        #expect(second > first)
        let ephemeral = try await zk.create("\(root)/lock-", mode: .ephemeralSequential)
        let stat = try #require(try await zk.exists(ephemeral))
        #expect(stat.ephemeralOwner == zk.sessionID)
        await #expect(throws: ZooKeeperError.noChildrenForEphemerals) {
            try await zk.create("\(ephemeral)/child")
        }
        let container = try await zk.createWithStat("\(root)/container", mode: .container)
        #expect(container.path == "\(root)/container" && container.stat != nil)
        await zk.close()
    }

    @Test func ephemeralNodeGoesWhenItsSessionCloses() async throws {
        let owner = try await connect()
        let observer = try await connect()
        try await observer.create(root)
        try await owner.create("\(root)/member", data: [1], mode: .ephemeral)
        // The observer's server may not have applied the owner's write yet: sync it first.
        try await observer.sync(root)
        let (stat, watch) = try await observer.existsAndWatch("\(root)/member")
        #expect(stat?.ephemeralOwner == owner.sessionID)

        await owner.close()
        #expect(owner.state == .closed)
        await #expect(throws: ZooKeeperError.closed) { try await owner.exists("/") }
        let event = try await withTimeout(.seconds(10)) { try await watch.event() }
        #expect(event == WatchEvent(type: .nodeDeleted, path: "\(root)/member"))
        #expect(try await observer.exists("\(root)/member") == nil)
        await observer.close()
    }

    @Test func droppedClientClosesItsSession() async throws {
        let observer = try await connect()
        try await observer.create(root)
        var owner: ZooKeeperClient? = try await connect(sessionTimeout: .seconds(30))
        try await owner?.create("\(root)/member", mode: .ephemeral)
        try await observer.sync(root)  // as above
        let (_, watch) = try await observer.existsAndWatch("\(root)/member")
        owner = nil
        // Far sooner than the 30 s session timeout: deinit sent closeSession.
        let event = try await withTimeout(.seconds(5)) { try await watch.event() }
        #expect(event.type == .nodeDeleted && owner == nil)
        await observer.close()
    }

    @Test func watchesFire() async throws {
        let watcher = try await connect()
        let writer = try await connect()
        try await writer.create(root)
        try await writer.create("\(root)/data", data: [0])
        // The watcher's server may not have applied the writer's creates yet (a .noNode here once).
        try await watcher.sync(root)

        let (_, _, dataWatch) = try await watcher.getDataAndWatch("\(root)/data")
        let (missing, existWatch) = try await watcher.existsAndWatch("\(root)/later")
        #expect(missing == nil)
        let (children, _, childWatch) = try await watcher.getChildrenAndWatch(root)
        #expect(children == ["data"])
        #expect(dataWatch.firedEvent == nil)

        try await writer.setData("\(root)/data", data: [1])
        try await writer.create("\(root)/later")

        let dataEvent = try await withTimeout(.seconds(10)) { try await dataWatch.event() }
        #expect(dataEvent == WatchEvent(type: .nodeDataChanged, path: "\(root)/data"))
        let created = try await withTimeout(.seconds(10)) { try await existWatch.event() }
        #expect(created == WatchEvent(type: .nodeCreated, path: "\(root)/later"))
        let childEvent = try await withTimeout(.seconds(10)) { try await childWatch.event() }
        #expect(childEvent == WatchEvent(type: .nodeChildrenChanged, path: root))
        // Waiting again on a fired watch returns the same event at once.
        #expect(try await dataWatch.event() == dataEvent)

        // A cancelled wait leaves the watch armed.
        let (_, _, again) = try await watcher.getDataAndWatch("\(root)/data")
        await #expect(throws: TimeoutError.self) { try await withTimeout(.milliseconds(100)) { try await again.event() } }
        try await writer.delete("\(root)/data")
        #expect(try await withTimeout(.seconds(10)) { try await again.event() }.type == .nodeDeleted)

        await watcher.close()
        await writer.close()
    }

    @Test func multiIsAtomic() async throws {
        let zk = try await connect()
        try await zk.create(root)
        await #expect(throws: ZooKeeperError.multiFailed(index: 2, error: .badVersion, results: [
            .error(nil), .error(nil), .error(.badVersion),
        ])) {
            try await zk.multi([
                .create(path: "\(root)/a", data: [1]),
                .create(path: "\(root)/b"),
                .check(path: root, version: 7),
            ])
        }
        #expect(try await zk.exists("\(root)/a") == nil)
        #expect(try await zk.exists("\(root)/b") == nil)

        let results = try await zk.multi([
            .create(path: "\(root)/a", data: [1]),
            .setData(path: "\(root)/a", data: [2], version: 0),
            .check(path: root, version: 0),
            .create(path: "\(root)/tmp"),
            .delete(path: "\(root)/tmp"),
        ])
        #expect(results.count == 5)
        #expect(results[0] == .created(path: "\(root)/a", stat: nil))
        if case .setData(let stat) = results[1] { #expect(stat.version == 1) } else { Issue.record("\(results[1])") }
        #expect(results[2] == .checked && results[4] == .deleted)
        #expect(try await zk.getData("\(root)/a").data == [2])
        await zk.close()
    }

    @Test func digestAuthAndACLs() async throws {
        let alice = try await connect()
        let anonymous = try await connect()
        try await alice.addDigestAuth(user: "alice", password: "secret")
        try await alice.create(root)

        // digest id computed client-side; world may read.
        let acl = [ACL(permissions: .all, id: .digest(user: "alice", password: "secret")), ACL(permissions: .read, id: .anyone)]
        try await alice.create("\(root)/shared", data: [1], acl: acl)
        // Each client reads another's writes only after a sync: its server may not have applied them.
        try await anonymous.sync(root)
        #expect(try await anonymous.getData("\(root)/shared").data == [1])
        await #expect(throws: ZooKeeperError.noAuth) { try await anonymous.setData("\(root)/shared", data: [2]) }
        try await alice.setData("\(root)/shared", data: [3])

        // auth: the creator's identities.
        try await alice.create("\(root)/private", acl: .creatorAll)
        let (stored, _) = try await alice.getACL("\(root)/private")
        #expect(stored == [ACL(permissions: .all, id: .digest(user: "alice", password: "secret"))])
        try await anonymous.sync(root)
        await #expect(throws: ZooKeeperError.noAuth) { try await anonymous.getData("\(root)/private") }
        await #expect(throws: ZooKeeperError.invalidACL) { try await anonymous.create("\(root)/nobody", acl: .creatorAll) }

        let impostor = try await connect()
        try await impostor.addDigestAuth(user: "alice", password: "wrong")
        try await impostor.sync(root)
        await #expect(throws: ZooKeeperError.noAuth) { try await impostor.getData("\(root)/private") }
        // Only a holder of the admin permission may change an ACL.
        await #expect(throws: ZooKeeperError.noAuth) { try await impostor.setACL("\(root)/private", acl: .openUnsafe) }
        await #expect(throws: ZooKeeperError.badVersion) { try await alice.setACL("\(root)/shared", acl: .creatorAll, version: 7) }
        let protected = try await alice.setACL("\(root)/shared", acl: .creatorAll, version: 0)
        #expect(protected.aversion == 1)
        try await anonymous.sync(root)
        await #expect(throws: ZooKeeperError.noAuth) { try await anonymous.getData("\(root)/shared") }
        try await anonymous.addDigestAuth(user: "alice", password: "secret")
        #expect(try await anonymous.getData("\(root)/private").stat.version == 0)

        await alice.close()
        await anonymous.close()
        await impostor.close()
    }

    /// The hardest case: the client sits on the leader, so the survivors must elect a new one
    /// before the session can be re-established.
    @Test func sessionSurvivesKillOfItsServer() async throws {
        let leader = try #require(ensemble.leader())
        let order = [ensemble.servers[leader - 1].address] + ensemble.addresses.filter { $0 != ensemble.servers[leader - 1].address }
        let zk = try await connect(sessionTimeout: .seconds(8), servers: order, shuffle: false)
        #expect(ensemble.serverID(of: zk.connectedServer) == leader)
        let states = zk.states()
        #expect(try await states.states(until: .connected) == [.connected])
        try await zk.create(root)
        let member = try await zk.create("\(root)/member", mode: .ephemeral)
        let (_, _, watch) = try await zk.getDataAndWatch(root)
        let sessionID = zk.sessionID
        let victim = try #require(ensemble.serverID(of: zk.connectedServer))

        let clock = ContinuousClock()
        let killedAt = clock.now
        ensemble.kill(victim)
        do {
            #expect(try await states.states(until: .reconnected) == [.suspended, .reconnected])
            let moved = clock.now - killedAt
            print("ZooKeeper session moved from server \(victim) to \(ensemble.serverID(of: zk.connectedServer) ?? 0) in \(moved)")
            #expect(zk.sessionID == sessionID)
            #expect(zk.connectedServer != ensemble.servers[victim - 1].address)
            #expect(try await zk.exists(member)?.ephemeralOwner == sessionID)

            // The watch was re-registered on the new server.
            let other = try await connect(servers: ensemble.addresses.filter { $0 != ensemble.servers[victim - 1].address })
            #expect(try await other.exists(member)?.ephemeralOwner == sessionID)
            try await other.setData(root, data: [9])
            let event = try await withTimeout(.seconds(10)) { try await watch.event() }
            #expect(event == WatchEvent(type: .nodeDataChanged, path: root))
            await other.close()
        } catch {
            try ensemble.startServer(victim)
            throw error
        }
        await zk.close()
        try ensemble.startServer(victim)
        try await ensemble.waitUntilServing([victim])
    }

    /// An ensemble re-created without its data refuses a session that has seen more of the old
    /// one ("it has seen zxid ... client must try another server"), on every server, for ever:
    /// the client stayed suspended and an election on it had no master until its process
    /// restarted (found from outside). Unheard for its timeout, the session is taken as expired,
    /// and a new one serves.
    @Test func aSessionOnAnEnsembleThatLostItsDataEndsAndANewOneServes() async throws {
        let zk = try await connect(sessionTimeout: .seconds(2))
        let states = zk.states()
        _ = try await states.states(until: .connected)
        try await zk.create(root)
        for i in 0..<5 { try await zk.create("\(root)/n\(i)") }
        for server in ensemble.servers { ensemble.kill(server.id) }
        for server in ensemble.servers {
            try FileManager.default.removeItem(at: server.home.appendingPathComponent("data/version-2"))
            try ensemble.startServer(server.id)
        }
        try await ensemble.waitUntilServing(ensemble.servers.map(\.id))
        // (Reconnected in between when the servers die one after another.)
        let seen = try await states.states(until: .expired)
        #expect(seen.first == .suspended && seen.last == .expired, "\(seen)")
        await zk.close()
        let fresh = try await connect()
        #expect(try await fresh.exists(root) == nil, "the ensemble lost its data")
        try await fresh.create(root)
        await fresh.close()
    }

    /// A client cut off from the ensemble (its only server frozen) for longer than its session
    /// timeout: the leader expires the session, and the client learns it when it gets through again.
    @Test func sessionExpiresDuringAPartition() async throws {
        let leader = try #require(ensemble.leader())
        let follower = try #require(ensemble.servers.first { $0.id != leader })
        let zk = try await connect(sessionTimeout: .seconds(1), servers: [follower.address])
        let states = zk.states()
        _ = try await states.states(until: .connected)
        let observer = try await connect(servers: ensemble.addresses.filter { $0 != follower.address })
        try await observer.create(root)
        try await zk.create("\(root)/ephemeral", mode: .ephemeral)

        ensemble.pause(follower.id)
        do {
            #expect(try await states.states(until: .suspended) == [.suspended])
            // A request made now waits for a reconnect; cancelling it gives up at once.
            let waiting = Task { try await zk.getData(root) }
            waiting.cancel()
            await #expect(throws: CancellationError.self) { try await waiting.value }
            // Bounded poll: the ephemeral vanishes once the leader expires the session.
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(30)
            while try await observer.exists("\(root)/ephemeral") != nil {
                guard clock.now < deadline else { throw TimeoutError() }
                try await Task.sleep(for: .milliseconds(50))
            }
        } catch {
            ensemble.resume(follower.id)
            throw error
        }
        ensemble.resume(follower.id)
        #expect(try await states.states(until: .expired) == [.expired])
        await #expect(throws: ZooKeeperError.sessionExpired) { try await zk.getData(root) }
        await zk.close()
        await observer.close()
        try await ensemble.waitUntilServing([follower.id])
    }

    @Test func sessionExpiryIsObserved() async throws {
        let zk = try await connect(sessionTimeout: .seconds(4))
        let states = zk.states()
        _ = try await states.states(until: .connected)
        try await zk.create(root)
        try await zk.create("\(root)/ephemeral", mode: .ephemeral)
        // A watch on a node the expiry does not touch (one on the ephemeral could fire first).
        let (_, _, watch) = try await zk.getDataAndWatch(root)

        // Another client takes the session over and closes it, as Curator's KillSession does.
        let thief = try await connect(session: zk.credentials, servers: ensemble.addresses.filter { $0 != zk.connectedServer })
        #expect(thief.sessionID == zk.sessionID)
        await thief.close()

        let seen = try await states.states(until: .expired)
        #expect(seen.suffix(2) == [.suspended, .expired])
        #expect(zk.state == .expired)
        await #expect(throws: ZooKeeperError.sessionExpired) { try await zk.exists(root) }
        await #expect(throws: ZooKeeperError.sessionExpired) { try await watch.event() }
        // Resuming the dead session fails too.
        await #expect(throws: ZooKeeperError.sessionExpired) { try await connect(session: zk.credentials) }

        let fresh = try await connect()
        try await fresh.sync(root)
        #expect(try await fresh.exists("\(root)/ephemeral") == nil)
        await fresh.close()
        await zk.close()
    }
}
