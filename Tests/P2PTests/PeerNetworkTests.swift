import Flows
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import HawserCore
import HawserTestSupport
import HawserWire
import Membership
import P2P
import Sessions
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Two nodes that reach each other only through loopback gRPC, each delivery signed: sessions
/// complete, a node is found at whichever of its addresses answers, a backlog drains in order
/// after the receiver comes back, and forged or replayed deliveries change nothing.
@Suite(.timeLimit(.minutes(3))) struct PeerNetworkTests {
    /// Starts both nodes (Bob's listed at `bobExtra` addresses before his own), points the
    /// network at their ports and runs `body`; stops them after.
    func withTwoNodes(bobFirst bobExtra: [Int] = [], aliceCallTimeout: Duration = .seconds(10), aliceHedgeAfter: Duration? = nil,
                      _ body: (PeerNode, PeerNode, TestNetwork) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        let network = try TestNetwork(TwoNodes.definition(alice: [1], bob: [1]))
        let alice = try PeerNode(name: "O=Alice Node", identity: TwoNodes.aliceIdentity, directory: directory.path + "/alice", network: network,
                                 callTimeout: aliceCallTimeout, hedgeAfter: aliceHedgeAfter)
        let bob = try PeerNode(name: "O=Bob Node", identity: TwoNodes.bobIdentity, directory: directory.path + "/bob", network: network)
        try FileManager.default.createDirectory(atPath: directory.path + "/alice", withIntermediateDirectories: true)
        let alicePort = try await alice.start()
        let bobPort = try await bob.start()
        try network.use(TwoNodes.definition(version: 2, alice: [alicePort], bob: bobExtra + [bobPort]))
        do { try await body(alice, bob, network) } catch {
            await alice.stop()
            await bob.stop()
            throw error
        }
        await alice.stop()
        await bob.stop()
    }

    @Test func aPingPongCompletesBetweenTwoNodesOverGRPC() async throws {
        try await withTwoNodes { alice, bob, _ in
            let ping = try await alice.engine.start(Ping(rounds: 3))
            let ended = try await alice.engine.waitForEnd(ping.id)
            #expect(ended.status == .completed, "\(ended.error ?? "")")
            #expect(try FlowCoding.decode([String].self, ended.result ?? []) == ["pong 1", "pong 2", "pong 3"])
            try await eventually("Bob's responder saw the close") { try await bob.flows(named: "Pong").first?.status == .completed }
            try await eventually("both outboxes drained") {
                let (aliceLeft, bobLeft) = (try await alice.outbox(), try await bob.outbox())
                return aliceLeft.isEmpty && bobLeft.isEmpty
            }
        }
    }

    @Test func aNodeIsReachedAtWhicheverOfItsAddressesAnswers() async throws {
        // Bob's first address has nothing listening (a standby gone, a machine down).
        let dead = try FreePorts.take(1)[0]
        try await withTwoNodes(bobFirst: [dead]) { alice, _, _ in
            let ended = try await alice.engine.waitForEnd(try await alice.engine.start(Ping(rounds: 2)).id)
            #expect(ended.status == .completed, "\(ended.error ?? "")")
            #expect(alice.hub.link.failures(of: "O=Bob") == 0)
        }
    }

    /// Bob's first address takes connections and never answers, as a paused process does (its
    /// partner took over): the next address is tried beside it long before the call's deadline,
    /// which here outlasts the test (it cost each failover the whole deadline, 10 s by default).
    @Test func aNodeIsReachedAtItsNextAddressWhileOneHangs() async throws {
        let hung = try HungListener()
        defer { hung.close() }
        try await withTwoNodes(bobFirst: [hung.port], aliceCallTimeout: .seconds(3600), aliceHedgeAfter: .milliseconds(200)) { alice, _, _ in
            let ended = try await alice.engine.waitForEnd(try await alice.engine.start(Ping(rounds: 2)).id)
            #expect(ended.status == .completed, "\(ended.error ?? "")")
        }
    }

    /// As above, but the other address turns the first call away (a standby not yet taken over)
    /// and serves only later: it is called again while the hung call waits. It was called once, and
    /// deliveries then waited for the paused process or the whole deadline (found from outside).
    @Test func aStandbyTakingOverBehindAPausedNodeIsCalledAgainUntilItServes() async throws {
        let hung = try HungListener()
        defer { hung.close() }
        let standby = try HungListener(closingEach: true)
        let directory = try TemporaryDirectory()
        let network = try TestNetwork(TwoNodes.definition(alice: [1], bob: [1]))
        try FileManager.default.createDirectory(atPath: directory.path + "/alice", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.path + "/bob", withIntermediateDirectories: true)
        let alice = try PeerNode(name: "O=Alice Node", identity: TwoNodes.aliceIdentity, directory: directory.path + "/alice", network: network,
                                 callTimeout: .seconds(3600), hedgeAfter: .milliseconds(100))
        let alicePort = try await alice.start()
        try network.use(TwoNodes.definition(version: 2, alice: [alicePort], bob: [hung.port, standby.port]))
        let ping = try await alice.engine.start(Ping(rounds: 1))
        try await eventually("Alice was turned away at Bob's second address") { standby.accepted > 0 }
        standby.close()
        let bob = try PeerNode(name: "O=Bob Node", identity: TwoNodes.bobIdentity, directory: directory.path + "/bob", network: network,
                               port: standby.port)
        _ = try await bob.start()
        let ended = try await alice.engine.waitForEnd(ping.id)
        #expect(ended.status == .completed, "\(ended.error ?? "")")
        await alice.stop()
        await bob.stop()
    }

    @Test func aBacklogDrainsInOrderOnceTheReceiverIsBack() async throws {
        let directory = try TemporaryDirectory()
        let network = try TestNetwork(TwoNodes.definition(alice: [1], bob: [1]))
        let alice = try PeerNode(name: "O=Alice Node", identity: TwoNodes.aliceIdentity, directory: directory.path + "/alice", network: network)
        var bob = try PeerNode(name: "O=Bob Node", identity: TwoNodes.bobIdentity, directory: directory.path + "/bob", network: network)
        let alicePort = try await alice.start()
        let bobPort = try await bob.start()
        await bob.stop()
        try network.use(TwoNodes.definition(version: 2, alice: [alicePort], bob: [bobPort]))
        // 600 messages of 2,000 bytes: more than one outbox batch (50), each batch more than one
        // delivery (64 KiB), while Bob is away.
        let burst = try await alice.engine.waitForEnd(try await alice.engine.start(Burst(count: 600, size: 2_000)).id)
        #expect(burst.status == .completed, "\(burst.error ?? "")")
        try await eventually("the link manager has tried Bob") { alice.hub.link.failures(of: "O=Bob") > 0 }
        #expect(try await alice.outbox().count == 602)  // initiate, 600 data, close

        bob = try PeerNode(name: "O=Bob Node", identity: TwoNodes.bobIdentity, directory: directory.path + "/bob", network: network, port: bobPort)
        _ = try await bob.start()
        try await eventually("Bob took all 600 in order") { try await bob.flows(named: "Count").first?.status == .completed }
        let count = try #require(try await bob.flows(named: "Count").first)
        #expect(try FlowCoding.decode(Int.self, count.result ?? []) == 600)
        try await eventually("Alice's outbox drained") { try await alice.outbox().isEmpty }
        await alice.stop()
        await bob.stop()
    }

    /// A client that speaks to Bob's node directly, as any process on the network could.
    func call(_ delivery: Hawser_P2p_V1_SignedDelivery, port: Int) async throws -> Hawser_P2p_V1_DeliveryReply {
        try await withGRPCClient(transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)) {
            try await Hawser_P2p_V1_Peer.Client(wrapping: $0).deliver(delivery)
        }
    }

    static let initiate = SessionMessage(session: "forged/0", sender: "O=Alice", recipient: "O=Bob", sequence: 1, kind: .initiate,
                                         initiator: .init(flowName: Burst.flowName, version: 1))
    static let data = SessionMessage(session: "forged/0", sender: "O=Alice", recipient: "O=Bob", sequence: 2, kind: .data, payload: text("1"))

    @Test func forgedDeliveriesAreRefusedAndChangeNothing() async throws {
        try await withTwoNodes { _, bob, network in
            let port = try #require(network.membership.node(named: "O=Bob Node")?.addresses.last.flatMap { URL(string: $0)?.port })
            let messages = [Self.initiate.encoded(), Self.data.encoded()]
            let now = SystemFlowClock().now()
            let forgeries: [(Hawser_P2p_V1_SignedDelivery, String)] = [
                (DeliverySigning.sign(messages, from: "O=Alice Node", to: "O=Bob Node", at: now, with: TwoNodes.outsider), "bad_signature"),
                (DeliverySigning.sign(messages, from: "O=Mallory Node", to: "O=Bob Node", at: now, with: TwoNodes.outsider), "not_a_member"),
                // Bob's own key cannot speak for Alice's node, nor Alice's for Bob's parties.
                (DeliverySigning.sign(messages, from: "O=Alice Node", to: "O=Bob Node", at: now, with: TwoNodes.bobIdentity), "bad_signature"),
                (DeliverySigning.sign([SessionMessage(session: "x/0", sender: "O=Bob", recipient: "O=Bob", sequence: 1, kind: .data).encoded()],
                                      from: "O=Alice Node", to: "O=Bob Node", at: now, with: TwoNodes.aliceIdentity), "forged_sender"),
                (DeliverySigning.sign(messages, from: "O=Alice Node", to: "O=Bob Node",
                                      at: Instant(microsecondsSinceEpoch: now.microsecondsSinceEpoch - 3_600_000_000), with: TwoNodes.aliceIdentity),
                 "stale_delivery"),
            ]
            for (forgery, code) in forgeries {
                let reply = try await call(forgery, port: port)
                #expect(reply.hasRefused && reply.refused.code == code && reply.answers.isEmpty, "\(reply)")
            }
            #expect(try await bob.database.sessions.inbound(Self.initiate.key) == nil)
            #expect(try await bob.flows(named: "Count").isEmpty)
        }
    }

    /// Another node's `initiate` in a session this node opened (its id begins with one of this
    /// node's flow ids) is refused: it was taken, and the responder it started broke the session
    /// of this node's own flow (found from outside, docs/sessions.md).
    @Test func anotherNodeCannotInitiateASessionThisNodeOpened() async throws {
        try await withTwoNodes { _, bob, network in
            let port = try #require(network.membership.node(named: "O=Bob Node")?.addresses.last.flatMap { URL(string: $0)?.port })
            let own = try await bob.engine.start(Burst(count: 1, size: 8))  // fails on Bob (it speaks as Alice): a flow of Bob's all the same
            _ = try await bob.engine.waitForEnd(own.id)
            let hijack = SessionMessage(session: "\(own.id.rawValue)/9", sender: "O=Alice", recipient: "O=Bob", sequence: 1, kind: .initiate,
                                        initiator: .init(flowName: Burst.flowName, version: 1))
            let reply = try await call(DeliverySigning.sign([hijack.encoded(), Self.initiate.encoded()], from: "O=Alice Node", to: "O=Bob Node",
                                                            at: SystemFlowClock().now(), with: TwoNodes.aliceIdentity), port: port)
            #expect(!reply.hasRefused && reply.answers.count == 2, "\(reply)")
            #expect(reply.answers.first?.code == "protocol_violation" && reply.answers.first?.message.contains("was opened by flow") == true,
                    "\(reply)")
            #expect(reply.answers.last?.accepted == true, "another session in the same delivery is taken: \(reply)")
            #expect(try await bob.flows(named: "Count").count == 1, "one responder, for the other session")
            #expect(try await bob.database.sessions.inbound(hijack.key) == nil)
        }
    }

    @Test func aReplayedDeliveryIsAnsweredAgainAndChangesNothing() async throws {
        try await withTwoNodes { _, bob, network in
            let port = try #require(network.membership.node(named: "O=Bob Node")?.addresses.last.flatMap { URL(string: $0)?.port })
            let delivery = DeliverySigning.sign([Self.initiate.encoded(), Self.data.encoded()], from: "O=Alice Node", to: "O=Bob Node",
                                                at: SystemFlowClock().now(), with: TwoNodes.aliceIdentity)
            for _ in 1...3 {
                let reply = try await call(delivery, port: port)
                #expect(!reply.hasRefused && reply.answers.map(\.accepted) == [true, true], "\(reply)")
            }
            #expect(try await bob.flows(named: "Count").count == 1)
            #expect(try await bob.database.sessions.inbound(Self.data.key)?.body == Self.data.encoded())
        }
    }
}

/// A TCP port on 127.0.0.1 whose connections the kernel completes and nobody reads: a process
/// that is paused (SIGSTOP) or hung. `closingEach`: a thread accepts each connection and closes
/// it at once, as a process that does not serve turns a call away.
private final class HungListener: Sendable {
    let fd: Int32
    let port: Int
    private let count = Mutex(0)
    private let closed = Atomic(false)
    /// Signalled by the turning-away thread once it has closed the socket (a socket closed under a
    /// thread's `poll` stays bound until the poll returns).
    private let done: DispatchSemaphore?

    init(closingEach: Bool = false) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound else { throw POSIXError(.EADDRNOTAVAIL) }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        done = closingEach ? DispatchSemaphore(value: 0) : nil
        if closingEach { Thread.detachNewThread { [self] in turnAway() } }
    }

    /// How many connections it has turned away.
    var accepted: Int { count.withLock { $0 } }

    private func turnAway() {
        while !closed.load(ordering: .acquiring) {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 20) > 0, !closed.load(ordering: .acquiring) else { continue }
            let connection = accept(fd, nil, nil)
            if connection >= 0 {
                // Reset, not closed: a closed connection would hold the port (TIME_WAIT) from Bob.
                var reset = linger(l_onoff: 1, l_linger: 0)
                setsockopt(connection, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
                _ = Glibc.close(connection)
                count.withLock { $0 += 1 }
            }
        }
        _ = Glibc.close(fd)
        done?.signal()
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let done { done.wait() } else { _ = Glibc.close(fd) }
    }
}
