import Sessions
import Synchronization

/// A `PeerTransport` between nodes in one process (tests, the simulator): each node's hub is
/// registered for the parties it hosts; a node not registered (stopped) cannot be reached.
public final class InProcessNetwork: PeerTransport, Sendable {
    private let hubs = Mutex<[String: SessionHub]>([:])

    public init() {}

    /// `hub` answers for `parties` from now on (a restarted node registers its new hub).
    public func register(_ hub: SessionHub, for parties: [String]) {
        hubs.withLock { for party in parties { $0[party] = hub } }
    }

    /// The node that hosts `parties` goes away: deliveries to them fail until it is registered again.
    public func unregister(_ parties: [String]) {
        hubs.withLock { for party in parties { $0[party] = nil } }
    }

    public func deliver(_ bodies: [[UInt8]], to recipient: String) async throws -> [DeliveryAnswer] {
        guard let hub = hubs.withLock({ $0[recipient] }) else { throw PeerUnreachable(recipient) }
        // Bodies this process encoded: they decode.
        return try await hub.accept(bodies.map(ArrivedMessage.init(body:)))
    }
}
