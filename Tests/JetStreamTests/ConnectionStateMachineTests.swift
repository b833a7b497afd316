import Testing

@testable import JetStream

@Suite("Connection state machine", .timeLimit(.minutes(10)))
struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine
    let a = ServerAddress(host: "a", port: 1)
    let b = ServerAddress(host: "b", port: 2)
    let c = ServerAddress(host: "c", port: 3)

    func machine(
        _ servers: [ServerAddress], configure: (inout Machine.Configuration) -> Void = { _ in }
    ) -> Machine {
        var configuration = Machine.Configuration()
        configuration.randomizeServers = false
        configure(&configuration)
        return Machine(servers: servers, configuration: configuration, seed: 42)
    }

    /// Drives a full handshake with `server` and returns the actions of the final PONG.
    func handshake(_ m: inout Machine, _ server: ServerAddress, info: ServerInfo = ServerInfo()) -> [Machine.Action] {
        #expect(m.socketConnected() == [])
        #expect(m.receivedInfo(info) == [.sendConnect(server, info)])
        return m.receivedPong()
    }

    @Test func connectsAndHandshakes() {
        var m = machine([a, b])
        #expect(m.start() == [.connect(a)])
        let actions = handshake(&m, a)
        #expect(actions == [.handshakeCompleted(a, ServerInfo(), isReconnect: false), .emit(.connected(a))])
        #expect(m.connectedServer == a)
        #expect(m.outbound(bytes: 10) == .write)
    }

    @Test func initialConnectTriesEachServerOnceThenFails() {
        var m = machine([a, b])
        #expect(m.start() == [.connect(a)])
        #expect(m.channelClosed(reason: "refused") == [.connect(b)])
        #expect(m.channelClosed(reason: "refused b") == [.failConnect(.connectionFailed("refused b"))])
        #expect(m.state == .closed)
    }

    @Test func authorizationErrorFailsTheInitialConnect() {
        var m = machine([a])
        _ = m.start()
        _ = m.socketConnected()
        _ = m.receivedInfo(ServerInfo(authRequired: true))
        let err = NATSError.authorizationViolation("Authorization Violation")
        #expect(m.receivedError("Authorization Violation") == [.closeChannel(err)])
        #expect(m.channelClosed(reason: nil) == [.failConnect(err)])
    }

    @Test func upgradesToTLSWhenTheServerRequiresIt() {
        var m = machine([a])
        _ = m.start()
        _ = m.socketConnected()
        let info = ServerInfo(tlsRequired: true)
        #expect(m.receivedInfo(info) == [.upgradeToTLS(a), .sendConnect(a, info)])
    }

    @Test func refusesServersWithoutTLSWhenTLSIsConfigured() {
        var m = machine([a]) { $0.tlsConfigured = true }
        _ = m.start()
        _ = m.socketConnected()
        #expect(m.receivedInfo(ServerInfo()) == [.closeChannel(.tlsMismatch("nats://a:1 does not offer TLS"))])
    }

    @Test func reconnectsToTheNextServerAtOnceThenBacksOff() {
        var m = machine([a, b, c])
        _ = m.start()
        _ = handshake(&m, a)
        // Lose a: try b immediately.
        #expect(m.channelClosed(reason: "eof") == [.emit(.disconnected(nil)), .connect(b)])
        // b and c fail: each other server is tried without delay, then the delay grows.
        guard case .scheduleReconnect(let d1) = m.channelClosed(reason: "refused").first else {
            Issue.record("expected a reconnect")
            return
        }
        #expect(d1 == .zero)
        #expect(m.reconnectTimerFired() == [.connect(c)])
        _ = m.channelClosed(reason: "refused")  // failure 2
        #expect(m.reconnectTimerFired() == [.connect(a)])
        guard case .scheduleReconnect(let d3) = m.channelClosed(reason: "refused").first else {
            Issue.record("expected a reconnect")
            return
        }
        // Third failure completes a pass over three servers: initial delay plus up to 25 % jitter.
        #expect(d3 >= .milliseconds(100) && d3 <= .milliseconds(125))
        #expect(m.reconnectTimerFired() == [.connect(b)])
        let actions = handshake(&m, b)
        #expect(actions == [.handshakeCompleted(b, ServerInfo(), isReconnect: true), .emit(.reconnected(b))])
        #expect(m.consecutiveFailures == 0)
    }

    @Test func backOffIsCappedAndJittered() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(2), jitter: 0.5)
        #expect(policy.delay(afterFailures: 2, servers: 3, random: 0.9) == .zero)
        #expect(policy.delay(afterFailures: 3, servers: 3, random: 0) == .milliseconds(100))
        #expect(policy.delay(afterFailures: 6, servers: 3, random: 0) == .milliseconds(200))
        #expect(policy.delay(afterFailures: 9, servers: 3, random: 0.5) == .milliseconds(500))
        #expect(policy.delay(afterFailures: 300, servers: 3, random: 0) == .seconds(2))
        #expect(policy.delay(afterFailures: 300, servers: 3, random: 0.999) < .seconds(3))
    }

    @Test func givesUpAfterMaxAttempts() {
        var m = machine([a]) { $0.reconnect.maxAttempts = 2 }
        _ = m.start()
        _ = handshake(&m, a)
        #expect(m.channelClosed(reason: "eof") == [.emit(.disconnected(nil)), .connect(a)])
        guard case .scheduleReconnect = m.channelClosed(reason: "x").first else {
            Issue.record("expected a reconnect")
            return
        }
        #expect(m.reconnectTimerFired() == [.connect(a)])
        #expect(m.channelClosed(reason: "y") == [.shutdown(.connectionFailed("y"))])
        #expect(m.state == .closed)
    }

    @Test func closesWithoutReconnectWhenDisabled() {
        var m = machine([a]) { $0.reconnect.enabled = false }
        _ = m.start()
        _ = handshake(&m, a)
        #expect(m.channelClosed(reason: "eof") == [.emit(.disconnected(nil)), .shutdown(.connectionClosed)])
    }

    @Test func buffersWhileDisconnectedUpToTheLimit() {
        var m = machine([a, b]) { $0.reconnectBufferSize = 100 }
        _ = m.start()
        _ = handshake(&m, a)
        _ = m.channelClosed(reason: "eof")
        #expect(m.outbound(bytes: 60) == .buffer)
        #expect(m.flush(id: 1) == .buffer)
        #expect(m.outbound(bytes: 60) == .reject(.reconnectBufferExceeded))
        #expect(m.bufferedBytes == 66)
        _ = handshake(&m, b)
        #expect(m.bufferedBytes == 0)
        // The buffered PING is answered after the handshake PONG.
        #expect(m.receivedPong() == [.flushSucceeded(1)])
    }

    @Test func flushesAreAnsweredInOrderAndFailOnDisconnect() {
        var m = machine([a])
        _ = m.start()
        _ = handshake(&m, a)
        #expect(m.flush(id: 1) == .write)
        #expect(m.pingTimerFired() == [.sendPing])
        #expect(m.flush(id: 2) == .write)
        #expect(m.receivedPong() == [.flushSucceeded(1)])
        #expect(m.receivedPong() == [])
        let actions = m.channelClosed(reason: "eof")
        #expect(actions.first == .failFlushes([2], .connectionClosed))
    }

    @Test func staleConnectionAfterUnansweredPings() {
        var m = machine([a]) { $0.maxPingsOutstanding = 2 }
        _ = m.start()
        _ = handshake(&m, a)
        #expect(m.pingTimerFired() == [.sendPing])
        #expect(m.pingTimerFired() == [.sendPing])
        #expect(m.pingTimerFired() == [.closeChannel(.staleConnection)])
        #expect(m.channelClosed(reason: nil) == [.emit(.disconnected(.staleConnection)), .connect(a)])
    }

    @Test func learnsServersFromConnectURLs() {
        var m = machine([a])
        _ = m.start()
        var info = ServerInfo()
        info.connectURLs = ["b:2", "a:1", "c:3"]
        _ = handshake(&m, a, info: info)
        // The server in use stays at the back of the rotation.
        #expect(m.pool.entries.map(\.address) == [b, c, a])
        #expect(m.pool.entries.map(\.discovered) == [true, true, false])
        var update = info
        update.connectURLs = ["d:4"]
        update.lameDuckMode = true
        let d = ServerAddress(host: "d", port: 4)
        #expect(m.receivedInfo(update) == [.emit(.discoveredServers([d])), .emit(.lameDuckMode(a))])
        // After losing a, the discovered servers are used.
        #expect(m.channelClosed(reason: nil) == [.emit(.disconnected(nil)), .connect(b)])
    }

    @Test func fatalServerErrorsCloseTheChannelOthersAreEvents() {
        var m = machine([a])
        _ = m.start()
        _ = handshake(&m, a)
        #expect(m.receivedError("Permissions Violation for Publish to foo") == [.emit(.serverError("Permissions Violation for Publish to foo"))])
        #expect(
            m.receivedError("Stale Connection")
                == [.emit(.serverError("Stale Connection")), .closeChannel(.serverError("Stale Connection"))])
    }

    @Test func closeFailsPendingFlushes() {
        var m = machine([a])
        _ = m.start()
        _ = handshake(&m, a)
        _ = m.flush(id: 9)
        #expect(m.close() == [.failFlushes([9], .connectionClosed), .shutdown(nil)])
        #expect(m.outbound(bytes: 1) == .reject(.connectionClosed))
        #expect(m.close() == [])
    }

    @Test func handshakeTimeoutClosesTheAttempt() {
        var m = machine([a, b])
        _ = m.start()
        _ = m.socketConnected()
        #expect(m.handshakeTimedOut() == [.closeChannel(.connectionFailed("handshake with nats://a:1 timed out"))])
        #expect(m.channelClosed(reason: nil) == [.connect(b)])
    }

    @Test func seededShufflingIsReproducible() {
        var c1 = Machine.Configuration()
        c1.randomizeServers = true
        let servers = (1...8).map { ServerAddress(host: "h\($0)", port: $0) }
        let m1 = Machine(servers: servers, configuration: c1, seed: 7)
        let m2 = Machine(servers: servers, configuration: c1, seed: 7)
        #expect(m1.pool.entries == m2.pool.entries)
        #expect(Set(m1.pool.entries.map(\.address)) == Set(servers))
    }
}
