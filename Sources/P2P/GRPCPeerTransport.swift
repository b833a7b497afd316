import Flows
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import HawserCore
import HawserWire
import Logging
import Membership
import ServiceLifecycle
import Sessions
import Synchronization

/// The sending side of peer-to-peer delivery (docs/p2p.md): it finds the node that hosts a
/// recipient in the membership in use, signs the messages with this node's identity key, and
/// calls `Peer/Deliver` at the node's addresses in turn, starting with the one that answered
/// last (an HA pair lists both of its processes; the standby answers UNAVAILABLE). An address
/// that fails is left for the next at once; one that does not answer within `hedgeAfter` (a
/// paused process, whose partner has taken over) gets the next one tried beside it, and the first
/// to take the delivery wins (the receiver takes each message once). A recipient's
/// messages go in deliveries of at most `maxDeliveryBytes`. Run it (a service) for as long as the
/// link manager that uses it: it owns the gRPC connections.
public final class GRPCPeerTransport: PeerTransport, Service, Sendable {
    public struct Settings: Sendable {
        /// This node's name in the network definition, and its identity key.
        public var me: String
        public var identity: SigningKey
        /// Largest delivery sent (its messages' bytes and the envelope's); a single message larger
        /// than fits is refused as `protocol_violation` without being sent.
        public var maxDeliveryBytes: Int
        /// How long one call may take.
        public var callTimeout: Duration
        /// How long a call goes unanswered before the node's next address is tried beside it.
        public var hedgeAfter: Duration

        /// `hedgeAfter` defaults to a tenth of `callTimeout`.
        public init(me: String, identity: SigningKey, maxDeliveryBytes: Int, callTimeout: Duration, hedgeAfter: Duration? = nil) {
            self.me = me
            self.identity = identity
            self.maxDeliveryBytes = maxDeliveryBytes
            self.callTimeout = callTimeout
            self.hedgeAfter = hedgeAfter ?? callTimeout / 10
        }
    }

    /// The receiving node refused a whole delivery (`DeliveryRefusal`): nothing of it was taken.
    public struct Refused: Error, CustomStringConvertible {
        public var node: String
        public var code: String
        public var message: String
        public var description: String { "`\(node)` refused the delivery: \(code): \(message)" }
    }

    struct NotAnAddress: Error, CustomStringConvertible {
        var address: String
        var description: String { "`\(address)` is not a peer-to-peer address (grpc://HOST:PORT)" }
    }

    typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

    private let settings: Settings
    private let membership: @Sendable () -> Membership
    private let clock: any FlowClock
    private let logger: Logger
    private let state = Mutex(State())
    private let started: AsyncStream<Client>
    private let start: AsyncStream<Client>.Continuation

    private struct State {
        var clients: [String: Client] = [:]
        /// The index of the address of each node that answered last.
        var preferred: [String: Int] = [:]
    }

    /// Room for the envelope around the messages: the two node names, the time, the signature.
    static let envelopeBytes = 2_048
    /// Most messages in one delivery (the receiver refuses more). The receiver takes them one
    /// transaction each, and a delivery that outlasts the call's deadline loses the answers of all
    /// it took (they are sent again): a small delivery keeps each call well inside its deadline.
    static let maxMessagesPerDelivery = DeliveryCheck.maxMessages

    public init(settings: Settings, membership: @escaping @Sendable () -> Membership, clock: any FlowClock = SystemFlowClock(),
                logger: Logger) {
        self.settings = settings
        self.membership = membership
        self.clock = clock
        self.logger = logger
        (started, start) = AsyncStream.makeStream()
    }

    /// Runs the connections of every client made, until cancelled or shut down gracefully.
    public func run() async {
        let started = self.started
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for await client in started { group.addTask { try? await client.runConnections() } }
            }
        }
        start.finish()
    }

    public func deliver(_ bodies: [[UInt8]], to recipient: String) async throws -> [DeliveryAnswer] {
        let membership = membership()
        guard let node = membership.node(hosting: recipient) else { throw PeerUnreachable(recipient) }
        let room = settings.maxDeliveryBytes - Self.envelopeBytes
        var answers = [DeliveryAnswer]()
        var chunk = [[UInt8]](), chunkBytes = 0
        func send() async throws -> Bool {
            defer { chunk = []; chunkBytes = 0 }
            guard !chunk.isEmpty else { return true }
            let got: [DeliveryAnswer]
            do { got = try await deliver(chunk, to: node) } catch {
                if answers.isEmpty { throw error }
                return false
            }
            answers += got
            return got.count == chunk.count
        }
        for body in bodies {
            let size = body.count + 8  // the field's tag and length
            if size > room {
                guard try await send() else { return answers }
                answers.append(.refused(SessionError(.protocolViolation, "the message is \(body.count) bytes, more than a "
                                                     + "delivery carries (network.maxDeliveryBytes \(settings.maxDeliveryBytes))")))
                continue
            }
            if chunkBytes + size > room || chunk.count == Self.maxMessagesPerDelivery { guard try await send() else { return answers } }
            chunk.append(body)
            chunkBytes += size
        }
        _ = try await send()
        return answers
    }

    /// One signed delivery to `node`, at each of its addresses in turn until one answers.
    private func deliver(_ bodies: [[UInt8]], to node: NetworkDefinition.Node) async throws -> [DeliveryAnswer] {
        let signed = DeliverySigning.sign(bodies, from: settings.me, to: node.name, at: clock.now(), with: settings.identity)
        let first = state.withLock { $0.preferred[node.name] ?? 0 }
        let order = (0..<node.addresses.count).map { (first + $0) % node.addresses.count }
        let (index, reply) = try await firstAnswer(signed, node: node, order: order)
        state.withLock { $0.preferred[node.name] = index }
        if reply.hasRefused {
            let refused = Refused(node: node.name, code: reply.refused.code, message: reply.refused.message)
            logger.warning("a peer refused a delivery", metadata: ["node": "\(node.name)", "address": "\(node.addresses[index])",
                                                                 "code": "\(refused.code)", "reason": "\(refused.message)"])
            throw refused
        }
        return reply.answers.map(Self.answer)
    }

    private enum Attempt: Sendable {
        case answered(Int, Hawser_P2p_V1_DeliveryReply)
        case failed(Int, any Error)
        /// The call made as the `n`th has not answered within `hedgeAfter`.
        case unanswered(n: Int)
        /// Time to call the address at this index again.
        case again(Int)
    }

    /// The first reply from the addresses at `order`: the next is called when one fails, or
    /// beside the calls under way when none has answered for `hedgeAfter`. An address that failed
    /// while another call still waits is called again every `hedgeAfter` (a standby that takes over
    /// from a paused process answers UNAVAILABLE until it has). The calls left are cancelled.
    private func firstAnswer(_ signed: Hawser_P2p_V1_SignedDelivery, node: NetworkDefinition.Node,
                             order: [Int]) async throws -> (Int, Hawser_P2p_V1_DeliveryReply) {
        guard let only = order.first else { throw PeerUnreachable(node.name) }
        if order.count == 1 { return (only, try await call(signed, at: node.addresses[only])) }
        return try await withThrowingTaskGroup(of: Attempt.self) { group in
            var next = 0, calling = 0
            var lastError: any Error = PeerUnreachable(node.name)
            let hedge = settings.hedgeAfter
            func call(_ index: Int) {
                calling += 1
                group.addTask {
                    do { return .answered(index, try await self.call(signed, at: node.addresses[index])) } catch { return .failed(index, error) }
                }
            }
            func callNext() {
                call(order[next])
                next += 1
                if next < order.count {
                    group.addTask { [n = next] in
                        try await Task.sleep(for: hedge)
                        return .unanswered(n: n)
                    }
                }
            }
            callNext()
            defer { group.cancelAll() }
            while calling > 0, let attempt = try await group.next() {
                switch attempt {
                case .answered(let index, let reply):
                    return (index, reply)
                case .failed(let index, let error):
                    logger.debug("a peer's address did not take the delivery", metadata: ["node": "\(node.name)", "address": "\(node.addresses[index])",
                                                                                       "error": "\(error)"])
                    lastError = error
                    calling -= 1
                    if next < order.count {
                        callNext()
                    } else if calling > 0 {
                        group.addTask {
                            try await Task.sleep(for: hedge)
                            return .again(index)
                        }
                    }
                case .unanswered(let n):
                    // Only the latest call's wait counts: after a failure the next was called at once.
                    if n == next, next < order.count { callNext() }
                case .again(let index):
                    call(index)
                }
            }
            throw lastError
        }
    }

    private func call(_ signed: Hawser_P2p_V1_SignedDelivery, at address: String) async throws -> Hawser_P2p_V1_DeliveryReply {
        var options = CallOptions.defaults
        options.timeout = settings.callTimeout
        options.waitForReady = false  // an address that is down fails at once: the next one is tried
        return try await Hawser_P2p_V1_Peer.Client(wrapping: try client(for: address)).deliver(signed, options: options)
    }

    private func client(for address: String) throws -> Client {
        if let client = state.withLock({ $0.clients[address] }) { return client }
        guard let url = URL(string: address), url.scheme?.lowercased() == "grpc", let host = url.host, let port = url.port else {
            throw NotAnAddress(address: address)  // the membership allows none: docs/network.md
        }
        let transport = try HTTP2ClientTransport.Posix(
            target: .dns(host: host, port: port), transportSecurity: .plaintext,
            config: .defaults { config in
                // Reconnect soon after a peer comes back; the link manager paces the retries.
                config.backoff.initial = .milliseconds(100)
                config.backoff.max = .seconds(2)
            })
        let made = Client(transport: transport)
        let (client, isNew) = state.withLock { state in
            if let existing = state.clients[address] { return (existing, false) }
            state.clients[address] = made
            return (made, true)
        }
        if isNew { start.yield(client) }
        return client
    }

    static func answer(_ answer: Hawser_P2p_V1_MessageAnswer) -> DeliveryAnswer {
        if answer.accepted { return .accepted }
        let code = SessionError.Code(rawValue: answer.code) ?? .protocolViolation
        return .refused(SessionError(code, code.rawValue == answer.code ? answer.message : "\(answer.code): \(answer.message)"))
    }
}
