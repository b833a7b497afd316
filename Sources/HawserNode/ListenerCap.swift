import HawserCore
import Logging
import NIOCore
import Prometheus
import Synchronization

/// The most connections, or gRPC calls, one listener holds open at once (`http.maxConnections`,
/// `grpc.maxConnections`, `grpc.maxCalls`, `network.listen.maxConnections`,
/// `network.listen.maxCalls`). Every connection costs a file descriptor until it closes, and the
/// timeouts bound how long a connection lives, not how many there are: 21,000 idle connections
/// took every descriptor of a notary whose limit was 20,000 (found from outside), after which it
/// could open neither a client's connection nor a file. Every open gRPC call costs 20 to 30 KB
/// however little it sends, and a `NotariseStream` may wait for ever: 102,400 silent calls took a
/// notary to 3.45 GB (found from outside), within the connection cap and the streams allowed
/// on each. A connection over its cap is closed as soon as it is accepted, before anything is read
/// from it; a call over its cap is refused (RST_STREAM `REFUSED_STREAM`). Either may be tried again.
final class ListenerCap: Sendable {
    /// What is counted: its name in metrics (`hawser_<kind>_open`) and logs.
    enum Kind: String, Sendable { case connections, calls }

    let limit: Int
    let kind: Kind
    /// The listener's name in metrics and logs: `http`, `grpc` or `p2p`.
    let listener: String
    /// The option that sets `limit`, for the log line.
    let option: String
    /// The most one source address (`SourceAddress`) may hold, and its option; nil: no such limit.
    let perSource: (limit: Int, option: String)?
    private let open = Atomic(0)
    private let bySource = Mutex<[String: Int]>([:])
    private let openGauge: Gauge
    private let refusedCounter: Counter
    private let refusals = RefusalLog(interval: .seconds(10))
    private let logger: Logger

    init(limit: Int, of kind: Kind = .connections, listener: String, option: String, perSource: (limit: Int, option: String)? = nil,
         registry: PrometheusCollectorRegistry, logger: Logger) {
        self.limit = limit
        self.perSource = perSource
        self.kind = kind
        self.listener = listener
        self.option = option
        openGauge = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "hawser_\(kind.rawValue)_open", unitName: "", helpText: "\(kind.rawValue.capitalized) open on the listener now."),
            labels: [("listener", listener)])
        refusedCounter = registry.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "hawser_\(kind.rawValue)_refused", unitName: "total",
            helpText: "\(kind.rawValue.capitalized) refused as they opened because the listener held its most."),
            labels: [("listener", listener)])
        self.logger = logger
    }

    static let range = 1...1_000_000

    /// The sentence for a cap outside `range`, if it is.
    static func problems(_ value: Int, option: String) -> [String] {
        range.contains(value) ? [] : ["\(option) must be \(range.lowerBound)...\(range.upperBound)"]
    }

    /// Counts one in from `source` if there is room; false (and counted as refused) if not.
    func admit(source: String = "") -> Bool {
        if let perSource, !bySource.withLock({ held in
            guard held[source, default: 0] < perSource.limit else { return false }
            held[source, default: 0] += 1
            return true
        }) {
            return refuse("one address (\(source)) holds \(perSource.option) (\(perSource.limit))", code: "over_source_cap")
        }
        if open.wrappingAdd(1, ordering: .relaxed).newValue <= limit {
            openGauge.increment()
            return true
        }
        open.wrappingSubtract(1, ordering: .relaxed)
        releaseSource(source)
        return refuse("the \(listener) listener holds \(option) (\(limit))", code: "over_cap")
    }

    private func refuse(_ why: String, code: String) -> Bool {
        refusedCounter.increment()
        if let unlogged = refusals.admit(code, at: .now) {
            logger.warning("refused new \(kind.rawValue): \(why) open",
                           metadata: unlogged > 0 ? ["refusedUnloggedSinceLast": "\(unlogged)"] : [:])
        }
        return false
    }

    /// Counts out one `admit(source:)` counted in.
    func release(source: String = "") {
        open.wrappingSubtract(1, ordering: .relaxed)
        openGauge.decrement()
        releaseSource(source)
    }

    private func releaseSource(_ source: String) {
        guard perSource != nil else { return }
        bySource.withLock { held in
            held[source, default: 1] -= 1
            if held[source] == 0 { held[source] = nil }
        }
    }
}

/// Carries out a connections `ListenerCap` on one accepted connection, at the head of its pipeline: it
/// closes the connection at once if the cap has no room, and otherwise gives its place back when
/// the connection closes.
final class ConnectionCapHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private enum State { case accepted, admitted, refused, released }

    private let cap: ListenerCap
    private var state = State.accepted
    /// Where the connection comes from (`SourceAddress`), once admitted.
    private var source = ""

    init(cap: ListenerCap) { self.cap = cap }

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
        if cap.perSource != nil { source = SourceAddress.group(context.channel.remoteAddress) }
        state = cap.admit(source: source) ? .admitted : .refused
        if state == .refused { context.close(promise: nil) }
    }

    private func release() {
        guard state == .admitted else { return }
        state = .released
        cap.release(source: source)
    }
}

@available(*, unavailable)
extension ConnectionCapHandler: Sendable {}
