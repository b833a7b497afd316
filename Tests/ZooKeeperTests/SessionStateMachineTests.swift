import NIOCore
import Testing
@testable import ZooKeeper

/// Drives a `SessionStateMachine` like the NIO shell does, remembering the timers it set.
struct Harness {
    typealias Action = SessionStateMachine.Action
    var machine: SessionStateMachine
    var timers: [SessionStateMachine.TimerKind: (SessionStateMachine.TimerID, Duration)] = [:]
    static let servers = [ServerAddress(host: "a", port: 1), ServerAddress(host: "b", port: 2), ServerAddress(host: "c", port: 3)]

    init(servers: [ServerAddress] = Harness.servers, sessionTimeout: Duration = .seconds(6), credentials: SessionCredentials? = nil) {
        var configuration = SessionStateMachine.Configuration(servers: servers)
        configuration.sessionTimeout = sessionTimeout
        configuration.credentials = credentials
        machine = SessionStateMachine(configuration: configuration)
    }

    mutating func record(_ actions: [Action]) -> [Action] {
        for action in actions {
            switch action {
            case .scheduleTimer(let id, let delay): timers[id.kind] = (id, delay)
            case .cancelTimer(let kind): timers[kind] = nil
            default: break
            }
        }
        return actions
    }

    mutating func start() -> [Action] { record(machine.start()) }
    mutating func established(_ id: UInt64) -> [Action] { record(machine.connectionEstablished(id)) }
    mutating func closed(_ id: UInt64) -> [Action] { record(machine.connectionClosed(id)) }
    mutating func failed(_ id: UInt64) -> [Action] { record(machine.connectionFailed(id)) }
    mutating func receive(_ id: UInt64, _ frames: ByteBuffer...) -> [Action] {
        var all = ByteBuffer()
        for var frame in frames { all.writeBuffer(&frame) }
        return record(machine.bytesReceived(id, all))
    }
    mutating func fire(_ kind: SessionStateMachine.TimerKind) -> [Action] {
        guard let (id, _) = timers[kind] else { Issue.record("no \(kind) timer set"); return [] }
        timers[kind] = nil
        return record(machine.timerFired(id))
    }
    mutating func submit(_ request: Request, id: UInt64, watch: WatchID? = nil) -> [Action] {
        record(machine.submit(request, id: id, watch: watch))
    }

    /// Connects connection `id` and completes the handshake with a session.
    mutating func handshake(_ id: UInt64, session: Int64 = 0x5E55, timeout: Int32 = 6000) -> [Action] {
        _ = established(id)
        return receive(id, Server.connectResponse(timeout: timeout, session: session))
    }
}

/// Frames a server would send, and readers for what the client wrote.
enum Server {
    static let password: [UInt8] = Array(100..<116)

    static func connectResponse(timeout: Int32, session: Int64) -> ByteBuffer {
        makeFrame { ConnectResponse(timeOut: timeout, sessionId: session, passwd: password).encode(into: &$0) }
    }

    static func reply(xid: Int32, zxid: Int64 = 0, err: Int32 = 0, _ body: (inout ByteBuffer) -> Void = { _ in }) -> ByteBuffer {
        makeFrame {
            ReplyHeader(xid: xid, zxid: zxid, err: err).encode(into: &$0)
            body(&$0)
        }
    }

    static func notification(_ type: WatchEventType, _ path: String) -> ByteBuffer {
        reply(xid: -1, zxid: -1) { WatcherEvent(type: type.code, state: 3, path: path).encode(into: &$0) }
    }
}

extension [SessionStateMachine.Action] {
    func writes(_ connection: UInt64) -> [ByteBuffer] {
        compactMap { if case .write(connection, let bytes) = $0 { bytes } else { nil } }
    }
    /// Written requests as (header, body) without the length prefix.
    func requests(_ connection: UInt64) -> [(header: RequestHeader, body: ByteBuffer)] {
        writes(connection).map { frame in
            var frame = frame
            frame.moveReaderIndex(forwardBy: 4)
            let header = try! RequestHeader(from: &frame)
            return (header, frame)
        }
    }
    var connects: [SessionStateMachine.ConnectionID: ServerAddress] {
        var result: [SessionStateMachine.ConnectionID: ServerAddress] = [:]
        for case .connect(let id, let server) in self { result[id] = server }
        return result
    }
    var states: [ZooKeeperConnectionState] { compactMap { if case .stateChanged(let state) = $0 { state } else { nil } } }
    var completions: [UInt64: Result<Response, ZooKeeperError>] {
        var result: [UInt64: Result<Response, ZooKeeperError>] = [:]
        for case .complete(let id, let outcome) in self { result[id] = outcome }
        return result
    }
    var closes: [UInt64] { compactMap { if case .closeConnection(let id) = $0 { id } else { nil } } }
}

@Suite(.timeLimit(.minutes(10))) struct SessionStateMachineTests {
    @Test func connectHandshakeAndTimerSchedule() throws {
        var h = Harness()
        let start = h.start()
        #expect(start.connects == [1: Harness.servers[0]])
        #expect(h.timers[.connect]?.1 == .seconds(2))          // 6 s shared by 3 servers
        #expect(h.timers[.initialConnect]?.1 == .seconds(15))

        var hello = try #require(h.established(1).writes(1).first)
        #expect(hello.readInteger(as: Int32.self) == Int32(hello.readableBytes))
        let request = try ConnectRequest(from: &hello)
        #expect(request == ConnectRequest(lastZxidSeen: 0, timeOut: 6000, sessionId: 0, passwd: Array(repeating: 0, count: 16), readOnly: false))

        let connected = h.receive(1, Server.connectResponse(timeout: 4500, session: 42))
        #expect(connected.states == [.connected])
        #expect(h.machine.session == SessionCredentials(id: 42, password: Server.password))
        #expect(h.machine.connectedServer == Harness.servers[0])
        #expect(h.timers[.ping]?.1 == .milliseconds(1500))     // a third of the negotiated 4.5 s
        #expect(h.timers[.read]?.1 == .milliseconds(3000))     // two thirds
        #expect(h.timers[.connect] == nil && h.timers[.initialConnect] == nil)
    }

    @Test func pingsAreSentOnTheTimerAndEveryFrameResetsTheReadTimeout() throws {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        let readTimer = try #require(h.timers[.read]).0
        let ping = h.fire(.ping)
        let sent = ping.requests(1)
        #expect(sent.count == 1 && sent[0].header == RequestHeader(xid: -2, type: 11) && sent[0].body.readableBytes == 0)
        #expect(h.timers[.ping] != nil)                         // re-armed
        _ = h.receive(1, Server.reply(xid: -2))
        let newReadTimer = try #require(h.timers[.read]).0
        #expect(newReadTimer != readTimer)
        // The replaced timer firing late is ignored.
        #expect(h.machine.timerFired(readTimer).isEmpty)
        #expect(h.machine.connectedServer != nil)
    }

    @Test func readTimeoutSuspendsAndReconnectsToTheNextServerWithTheSameSession() throws {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1, session: 77)
        _ = h.submit(.getData(path: "/a", watch: false), id: 1)
        _ = h.receive(1, Server.reply(xid: 1, zxid: 500) { $0.writeJuteBuffer([1]); Stat().encode(into: &$0) })
        _ = h.submit(.getData(path: "/b", watch: false), id: 2)   // in flight when the connection dies

        let timeout = h.fire(.read)
        #expect(timeout.closes == [1])
        #expect(timeout.states == [.suspended])
        #expect(timeout.completions[2] == .failure(.connectionLoss))
        #expect(timeout.connects == [2: Harness.servers[1]])

        _ = h.submit(.exists(path: "/c", watch: false), id: 3)    // queued while suspended
        var hello = try #require(h.established(2).writes(2).first)
        hello.moveReaderIndex(forwardBy: 4)
        let request = try ConnectRequest(from: &hello)
        #expect(request.sessionId == 77 && request.passwd == Server.password && request.lastZxidSeen == 500)

        let back = h.receive(2, Server.connectResponse(timeout: 6000, session: 77))
        #expect(back.states == [.reconnected])
        let sent = back.requests(2)
        #expect(sent.map(\.header.type) == [OpCode.exists.rawValue])
        #expect(h.machine.connectedServer == Harness.servers[1])
    }

    @Test func connectionClosedByPeerAlsoSuspends() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        let lost = h.closed(1)
        #expect(lost.states == [.suspended])
        #expect(lost.connects == [2: Harness.servers[1]])
        // A late close of the dead connection changes nothing.
        #expect(h.closed(1).isEmpty)
    }

    @Test func afterEveryServerFailedInARowItBacksOff() {
        var h = Harness()
        _ = h.start()
        #expect(h.failed(1).connects == [2: Harness.servers[1]])
        #expect(h.failed(2).connects == [3: Harness.servers[2]])
        let third = h.failed(3)
        #expect(third.connects.isEmpty)
        #expect(h.timers[.reconnect] != nil)
        #expect(h.fire(.reconnect).connects == [4: Harness.servers[0]])
        // A connect timeout (TCP up, no handshake answer) moves on too.
        _ = h.established(4)
        let timedOut = h.fire(.connect)
        #expect(timedOut.closes == [4])
        #expect(timedOut.connects == [5: Harness.servers[1]])
    }

    @Test func initialConnectTimeoutClosesTheClient() {
        var h = Harness()
        _ = h.start()
        _ = h.submit(.sync(path: "/"), id: 9)
        let giveUp = h.fire(.initialConnect)
        #expect(giveUp.states == [.closed])
        #expect(giveUp.completions[9] == .failure(.connectionLoss))
        #expect(giveUp.closes == [1])
        #expect(h.submit(.sync(path: "/"), id: 10).completions[10] == .failure(.closed))
    }

    @Test func expiryIsReportedWhenTheServerAnswersTimeoutZero() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1, session: 5)
        _ = h.submit(.exists(path: "/w", watch: true), id: 1, watch: 100)
        _ = h.receive(1, Server.reply(xid: 1, zxid: 3) { Stat().encode(into: &$0) })
        _ = h.closed(1)
        _ = h.submit(.getData(path: "/q", watch: false), id: 2)
        _ = h.established(2)
        let expired = h.receive(2, Server.connectResponse(timeout: 0, session: 0))
        #expect(expired.states == [.expired])
        #expect(expired.completions[2] == .failure(.sessionExpired))
        #expect(expired.contains(.failWatches([100], .sessionExpired)))
        #expect(expired.closes == [2])
        #expect(h.machine.phase == .expired)
        #expect(h.submit(.sync(path: "/"), id: 3).completions[3] == .failure(.sessionExpired))
        #expect(h.machine.close(id: 4).completions[4] == .success(.none))
    }

    /// An ensemble that lost its data refuses a reconnection whose last zxid is ahead of its
    /// own, on every server, for ever: the session is taken as expired once none has heard from
    /// it for the negotiated timeout, and its owner starts a new one (found from outside: a
    /// hot-warm pair stayed without a master until both processes restarted).
    @Test func aSessionUnheardForItsTimeoutWhileReconnectingIsExpired() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1, session: 5, timeout: 6000)
        _ = h.submit(.exists(path: "/w", watch: true), id: 1, watch: 100)
        _ = h.receive(1, Server.reply(xid: 1, zxid: 3) { Stat().encode(into: &$0) })
        let lost = h.closed(1)
        #expect(lost.states == [.suspended])
        #expect(h.timers[.sessionLost]?.1 == .milliseconds(6000))
        // Every server takes the TCP connection and closes it after the handshake.
        _ = h.established(2)
        _ = h.closed(2)
        _ = h.submit(.getData(path: "/q", watch: false), id: 2)
        _ = h.established(3)
        let expired = h.fire(.sessionLost)
        #expect(expired.states == [.expired])
        #expect(expired.closes == [3])
        #expect(expired.completions[2] == .failure(.sessionExpired))
        #expect(expired.contains(.failWatches([100], .sessionExpired)))
        #expect(h.machine.phase == .expired)
        #expect(h.timers.isEmpty, "\(h.timers)")
    }

    /// A reconnection within the timeout keeps the session, and a later loss starts the clock anew.
    @Test func aSessionBackWithinItsTimeoutIsKept() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1, session: 5, timeout: 6000)
        _ = h.closed(1)
        let clock = h.timers[.sessionLost]?.0
        _ = h.established(2)
        #expect(h.receive(2, Server.connectResponse(timeout: 6000, session: 5)).states == [.reconnected])
        #expect(h.timers[.sessionLost] == nil)
        if let clock { #expect(h.record(h.machine.timerFired(clock)).isEmpty, "a stale timer changes nothing") }
        #expect(h.machine.connectedServer == Harness.servers[1])
    }

    @Test func resumingAGivenSessionSendsItsCredentials() throws {
        var h = Harness(credentials: SessionCredentials(id: 0xABC, password: [1, 2, 3]))
        _ = h.start()
        var hello = try #require(h.established(1).writes(1).first)
        hello.moveReaderIndex(forwardBy: 4)
        let request = try ConnectRequest(from: &hello)
        #expect(request.sessionId == 0xABC && request.passwd == [1, 2, 3])
        #expect(h.receive(1, Server.connectResponse(timeout: 6000, session: 0xABC)).states == [.connected])
    }

    @Test func requestsAreMatchedInOrderAndErrorsMapped() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        let sent = h.submit(.create(path: "/x", data: [1], acl: .openUnsafe, mode: .persistent), id: 1).requests(1)
        #expect(sent.first?.header == RequestHeader(xid: 1, type: 15))
        _ = h.submit(.delete(path: "/y", version: 3), id: 2)
        _ = h.submit(.exists(path: "/z", watch: false), id: 3)
        let replies = h.receive(1,
            Server.reply(xid: 1, zxid: 10) { $0.writeJuteString("/x"); Stat(version: 0).encode(into: &$0) },
            Server.reply(xid: 2, zxid: 11, err: -103),
            Server.reply(xid: 3, zxid: 11, err: -101))
        #expect(replies.completions[1] == .success(.created(path: "/x", stat: Stat(version: 0))))
        #expect(replies.completions[2] == .failure(.badVersion))
        #expect(replies.completions[3] == .success(.noStat))
        #expect(h.machine.lastZxid == 11)
    }

    @Test func anOutOfOrderReplyDropsTheConnection() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        _ = h.submit(.sync(path: "/"), id: 1)
        let bad = h.receive(1, Server.reply(xid: 42) { $0.writeJuteString("/") })
        #expect(bad.closes == [1])
        #expect(bad.completions[1] == .failure(.connectionLoss))
        #expect(bad.states == [.suspended])
    }

    @Test func garbageFromTheServerDropsTheConnection() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        let bad = h.receive(1, ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF]))
        #expect(bad.closes == [1])
        #expect(bad.states == [.suspended])
    }

    @Test func invalidPathsAreRefusedWithoutSending() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        let refused = h.submit(.getData(path: "no-slash", watch: false), id: 1)
        #expect(refused.completions[1] == .failure(.badArguments))
        #expect(refused.writes(1).isEmpty)
        #expect(h.submit(.create(path: "/seq-", data: [], acl: .openUnsafe, mode: .persistentSequential), id: 2).writes(1).count == 1)
    }

    @Test func multiFailureNamesTheFailingOperation() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        _ = h.submit(.multi([.create(path: "/a"), .check(path: "/b", version: 1)]), id: 1)
        let reply = h.receive(1, Server.reply(xid: 1, zxid: 5) {
            MultiHeader(type: -1, done: false, err: 0).encode(into: &$0); $0.writeJuteInt(0)
            MultiHeader(type: -1, done: false, err: -103).encode(into: &$0); $0.writeJuteInt(-103)
            MultiHeader.end.encode(into: &$0)
        })
        #expect(reply.completions[1] == .failure(.multiFailed(index: 1, error: .badVersion, results: [.error(nil), .error(.badVersion)])))
    }

    @Test func watchesFireOnceAndAreReRegisteredAfterReconnect() throws {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        _ = h.submit(.getData(path: "/d", watch: true), id: 1, watch: 10)
        _ = h.submit(.exists(path: "/missing", watch: true), id: 2, watch: 11)
        _ = h.submit(.getChildren(path: "/p", watch: true), id: 3, watch: 12)
        _ = h.submit(.getData(path: "/nope", watch: true), id: 4, watch: 13)   // NoNode: no watch
        _ = h.receive(1,
            Server.reply(xid: 1, zxid: 20) { $0.writeJuteBuffer([]); Stat().encode(into: &$0) },
            Server.reply(xid: 2, zxid: 20, err: -101),
            Server.reply(xid: 3, zxid: 21) { $0.writeJuteVector(["c"]) { $0.writeJuteString($1) }; Stat().encode(into: &$0) },
            Server.reply(xid: 4, zxid: 21, err: -101))
        #expect(h.machine.watches.count == 3)

        _ = h.closed(1)
        _ = h.established(2)
        let back = h.receive(2, Server.connectResponse(timeout: 6000, session: 0x5E55))
        let setWatches = back.requests(2).filter { $0.header.xid == -8 }
        #expect(setWatches.count == 1)
        var body = try #require(setWatches.first).body
        #expect(try SetWatches(from: &body) == SetWatches(relativeZxid: 21, dataWatches: ["/d"], existWatches: ["/missing"], childWatches: ["/p"]))
        _ = h.receive(2, Server.reply(xid: -8))

        let created = h.receive(2, Server.notification(.nodeCreated, "/missing"))
        #expect(created == [.scheduleTimer(h.timers[.read]!.0, .seconds(4)), .fireWatches([11], WatchEvent(type: .nodeCreated, path: "/missing"))])
        let deleted = h.receive(2, Server.notification(.nodeDeleted, "/p"))
        #expect(deleted.contains(.fireWatches([12], WatchEvent(type: .nodeDeleted, path: "/p"))))
        // One-shot: a second event for the same node fires nothing.
        #expect(!h.receive(2, Server.notification(.nodeDeleted, "/p")).contains { if case .fireWatches = $0 { true } else { false } })
        #expect(h.machine.watches.count == 1)

        _ = h.machine.close(id: 99)
        let closed = h.receive(2, Server.reply(xid: 5))
        #expect(closed.contains(.failWatches([10], .closed)))
    }

    @Test func authIsSentAndReplayedAfterReconnect() throws {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        let auth = h.record(h.machine.addAuth(scheme: "digest", auth: Array("u:p".utf8), id: 1)).requests(1)
        #expect(auth.first?.header == RequestHeader(xid: -4, type: 100))
        var body = try #require(auth.first).body
        #expect(try body.readJuteInt() == 0)
        #expect(try body.readJuteString() == "digest")
        #expect(try body.readJuteBuffer() == Array("u:p".utf8))
        #expect(h.receive(1, Server.reply(xid: -4)).completions[1] == .success(.none))

        _ = h.closed(1)
        _ = h.established(2)
        let back = h.receive(2, Server.connectResponse(timeout: 6000, session: 0x5E55))
        #expect(back.requests(2).map(\.header.xid) == [-4])
        #expect(h.receive(2, Server.reply(xid: -4)).completions.isEmpty)

        _ = h.record(h.machine.addAuth(scheme: "bogus", auth: [], id: 2))
        #expect(h.receive(2, Server.reply(xid: -4, err: -115)).completions[2] == .failure(.authFailed))
    }

    @Test func closeSendsCloseSessionAndWaitsForItsReply() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        _ = h.submit(.sync(path: "/"), id: 1)
        let closing = h.record(h.machine.close(id: 2))
        #expect(closing.requests(1).map(\.header) == [RequestHeader(xid: 2, type: -11)])
        #expect(h.submit(.sync(path: "/"), id: 3).completions[3] == .failure(.closed))
        let done = h.receive(1, Server.reply(xid: 1) { $0.writeJuteString("/") }, Server.reply(xid: 2))
        #expect(done.completions[1] == .success(.synced("/")))
        #expect(done.completions[2] == .success(.none))
        #expect(done.states == [.closed])
        #expect(done.closes == [1])
    }

    @Test func closeGivesUpWaitingAfterTheReadTimeout() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        _ = h.record(h.machine.close(id: 1))
        let done = h.fire(.closing)
        #expect(done.completions[1] == .success(.none))
        #expect(done.states == [.closed])
    }

    @Test func closeWhileSuspendedClosesAtOnce() {
        var h = Harness()
        _ = h.start()
        _ = h.handshake(1)
        _ = h.closed(1)                         // now connecting to server b as connection 2
        _ = h.submit(.sync(path: "/"), id: 1)
        let done = h.record(h.machine.close(id: 2))
        #expect(done.closes == [2])
        #expect(done.completions[1] == .failure(.closed))
        #expect(done.completions[2] == .success(.none))
        #expect(done.states == [.closed])
    }

    @Test func cancelledRequestsAreForgotten() {
        var h = Harness()
        _ = h.start()
        _ = h.submit(.sync(path: "/queued"), id: 1)
        h.machine.cancel(1)
        let connected = h.handshake(1)
        #expect(connected.requests(1).isEmpty)
        _ = h.submit(.getData(path: "/w", watch: true), id: 2, watch: 7)
        h.machine.cancel(2)
        let reply = h.receive(1, Server.reply(xid: 1) { $0.writeJuteBuffer([]); Stat().encode(into: &$0) })
        #expect(reply.completions.isEmpty)
        #expect(h.machine.watches.isEmpty)
    }
}

@Suite(.timeLimit(.minutes(10))) struct WatchTableTests {
    @Test func triggerRulesFollowZooKeeper() {
        var table = WatchTable()
        table.register(1, kind: .data, path: "/n")
        table.register(2, kind: .exist, path: "/n")
        table.register(3, kind: .child, path: "/n")
        table.register(4, kind: .data, path: "/n")
        #expect(table.trigger(.nodeChildrenChanged, path: "/n") == [3])
        #expect(table.trigger(.nodeDataChanged, path: "/n") == [1, 4, 2])
        #expect(table.isEmpty)
        table.register(5, kind: .data, path: "/m")
        table.register(6, kind: .child, path: "/m")
        #expect(table.trigger(.nodeDeleted, path: "/m") == [5, 6])
        #expect(table.trigger(.nodeCreated, path: "/other").isEmpty)
    }

    @Test func setWatchesIsBatched() {
        var table = WatchTable()
        for i in 0..<100 { table.register(WatchID(i), kind: .data, path: "/node-\(i)") }
        table.register(1000, kind: .child, path: "/parent")
        let batches = table.setWatches(relativeZxid: 7, maxBytes: 200)
        #expect(batches.count > 1)
        #expect(batches.allSatisfy { $0.relativeZxid == 7 })
        #expect(batches.flatMap(\.dataWatches).count == 100)
        #expect(batches.flatMap(\.childWatches) == ["/parent"])
        #expect(table.removeAll().count == 101)
        #expect(table.setWatches(relativeZxid: 7).isEmpty)
    }
}
