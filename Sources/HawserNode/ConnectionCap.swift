import HawserCore
import Logging
import NIOCore
import Prometheus
import Synchronization

/// The most connections one listener holds open at once (`http.maxConnections`,
/// `grpc.maxConnections`, `network.listen.maxConnections`). Every connection costs a file
/// descriptor until it closes, and the timeouts bound how long a connection lives, not how many
/// there are: 21,000 idle connections took every descriptor of a notary whose limit was 20,000
/// (found from outside), after which it could open neither a client's connection nor a file. A
/// connection over the cap is closed as soon as it is accepted, before anything is read from it;
/// the client sees its connection closed or reset and may try again.
final class ConnectionCap: Sendable {
    let limit: Int
    /// The listener's name in metrics and logs: `http`, `grpc` or `p2p`.
    let listener: String
    /// The option that sets `limit`, for the log line.
    let option: String
    private let open = Atomic(0)
    private let openGauge: Gauge
    private let refusedCounter: Counter
    private let refusals = RefusalLog(interval: .seconds(10))
    private let logger: Logger

    init(limit: Int, listener: String, option: String, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.limit = limit
        self.listener = listener
        self.option = option
        openGauge = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "hawser_connections_open", unitName: "", helpText: "Connections open on the listener now."),
            labels: [("listener", listener)])
        refusedCounter = registry.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "hawser_connections_refused", unitName: "total", helpText: "Connections closed at accept because the listener held its most."),
            labels: [("listener", listener)])
        self.logger = logger
    }

    static let range = 1...1_000_000

    /// The sentence for a cap outside `range`, if it is.
    static func problems(_ value: Int, option: String) -> [String] {
        range.contains(value) ? [] : ["\(option) must be \(range.lowerBound)...\(range.upperBound)"]
    }

    /// Counts a connection in if there is room; false (and counted as refused) if not.
    func admit() -> Bool {
        if open.wrappingAdd(1, ordering: .relaxed).newValue <= limit {
            openGauge.increment()
            return true
        }
        open.wrappingSubtract(1, ordering: .relaxed)
        refusedCounter.increment()
        if let unlogged = refusals.admit("over_cap", at: .now) {
            logger.warning("closed a new connection: the \(listener) listener holds \(option) (\(limit)) open",
                           metadata: unlogged > 0 ? ["refusedUnloggedSinceLast": "\(unlogged)"] : [:])
        }
        return false
    }

    /// Counts out a connection `admit` counted in.
    func release() {
        open.wrappingSubtract(1, ordering: .relaxed)
        openGauge.decrement()
    }
}

/// Carries out a `ConnectionCap` on one accepted connection, at the head of its pipeline: it
/// closes the connection at once if the cap has no room, and otherwise gives its place back when
/// the connection closes.
final class ConnectionCapHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private enum State { case accepted, admitted, refused, released }

    private let cap: ConnectionCap
    private var state = State.accepted

    init(cap: ConnectionCap) { self.cap = cap }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { release() }

    func channelActive(context: ChannelHandlerContext) {
        admit(context)
        // A refused connection is closing: the server behind never hears of it.
        if state == .admitted { context.fireChannelActive() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    private func admit(_ context: ChannelHandlerContext) {
        guard state == .accepted else { return }
        state = cap.admit() ? .admitted : .refused
        if state == .refused { context.close(promise: nil) }
    }

    private func release() {
        guard state == .admitted else { return }
        state = .released
        cap.release()
    }
}

@available(*, unavailable)
extension ConnectionCapHandler: Sendable {}
