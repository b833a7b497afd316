import Flows
import JetStream
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// A hot-hot process on its node's bus (`ha.bus`, docs/node.md "The bus"): it publishes what its
/// session hub wrote to the shared database (`SessionHub.announce`) and the starts it queued (an
/// RPC worker), and hands what the other processes published to its hub (`SessionHub.heard`) and
/// to the reader of the start queue (`QueuedStarts`). The bus only hastens: every event is also
/// found by a poll, so a process starts and serves without it, and one that loses it (a NATS
/// server restarts) goes on at the pace of its polls until it is back.
final class NodeBus: Service, Sendable {
    private let settings: BusSettings
    private let subject: String
    private let id: String
    private let hub: SessionHub?
    private let starts: QueuedStarts?
    private let settled: FlowSettledSignals
    private let logger: Logger
    private let outgoing: AsyncStream<BusNews>
    private let send: AsyncStream<BusNews>.Continuation
    /// `hawser_bus_connected`: 1 while this process is connected and subscribed.
    private let connected: Gauge
    /// `hawser_bus_events_total` by direction: `published`, `heard`, `refused`.
    private let published, heard, refused: Counter
    /// Events kept while the connection is being made, newest kept; more are dropped (the polls find them).
    static let backlog = 4_096
    /// Events received and not yet heard (at most the servers' `max_payload` each, 1 MiB by default).
    static let heardBacklog = 1_024

    /// `hub`: a network member's session hub; `starts`: a process serving partitions reads the
    /// start queue; `settled`: what an RPC worker hears of the flows it waits for.
    init(_ settings: BusSettings, election: String, id: String, hub: SessionHub?, starts: QueuedStarts?, settled: FlowSettledSignals,
         registry: PrometheusCollectorRegistry, logger: Logger) {
        connected = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "hawser_bus_connected", unitName: "", helpText: "1 while this process is connected to its node's bus and subscribed (ha.bus)."))
        connected.set(to: 0)
        func events(_ direction: String) -> Counter {
            registry.makeCounter(descriptor: MetricNameDescriptor(
                metricName: "hawser_bus_events", unitName: "total", helpText: "Events this process published on its node's bus, heard from the others, or refused (ha.bus)."),
                labels: [("direction", direction)])
        }
        (published, heard, refused) = (events("published"), events("heard"), events("refused"))
        self.settings = settings
        subject = settings.eventsSubject(election: election)
        self.id = id
        self.hub = hub
        self.starts = starts
        self.settled = settled
        self.logger = { var logger = logger; logger[metadataKey: "component"] = "bus"; return logger }()
        (outgoing, send) = AsyncStream.makeStream(of: BusNews.self, bufferingPolicy: .bufferingNewest(Self.backlog))
        hub?.announce { [send] in send.yield(.session($0)) }
    }

    /// This process queued a flow's start (`NodeFlowStore.enqueue`).
    func startQueued(_ id: FlowID) { send.yield(.startsQueued([id])) }

    /// A flow this process ran ended or was parked.
    func flowSettled(_ id: FlowID) { send.yield(.flowsSettled([id])) }

    func run() async throws {
        var options = NATSOptions(servers: settings.servers, name: "hawser-node-\(id)")
        options.retryOnFailedInitialConnect = true
        options.pingInterval = .seconds(2)
        options.echo = false  // a process's own events are no news to it
        // Events waiting for this process to hear them, beyond which new ones are dropped (the
        // polls find what they name): a flood on the subject cannot fill its memory.
        options.subscriptionBufferLimit = Self.heardBacklog
        logger.info("connecting to the bus", metadata: ["servers": "\(settings.servers)", "subject": "\(subject)"])
        await cancelWhenGracefulShutdown { [options, logger] in
            let client: NATSClient
            do { client = try await NATSClient.connect(options) } catch {
                if !Task.isCancelled { logger.error("could not connect to the bus; polls alone find what other processes write", metadata: ["error": "\(error)"]) }
                return
            }
            await withDiscardingTaskGroup { group in
                group.addTask { await self.listen(client) }
                group.addTask { await self.publish(client) }
                group.addTask { await self.follow(client) }
            }
            self.connected.set(to: 0)
            self.settled.connected = false
            await client.close()
        }
    }

    private func publish(_ client: NATSClient) async {
        for await news in outgoing {
            do {
                try await client.publish(subject, payload: BusEvents.encode(news, sender: id))
                published.increment()
            } catch {
                logger.debug("could not publish on the bus", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The connection's losses and returns (its subscription is made again on each return).
    private func follow(_ client: NATSClient) async {
        for await event in client.events() {
            switch event {
            case .disconnected:
                connected.set(to: 0)
                settled.connected = false
                logger.warning("lost the bus; polls alone find what other processes write until it is back")
            case .reconnected:
                connected.set(to: 1)
                settled.connected = true
                logger.notice("on the bus again")
            case .closed: return
            default: break
            }
        }
    }

    private func listen(_ client: NATSClient) async {
        let subscription: Subscription
        do { subscription = try await client.subscribe(subject) } catch {
            logger.error("could not subscribe on the bus; polls alone find what other processes write", metadata: ["error": "\(error)"])
            return
        }
        connected.set(to: 1)
        settled.connected = true
        logger.notice("on the bus", metadata: ["subject": "\(subject)"])
        var said = Set<String>()
        do {
            for try await message in subscription {
                do {
                    let (sender, news) = try BusEvents.decode(Array(buffer: message.payload))
                    if sender != id {
                        heard.increment()
                        switch news {
                        case .session(let news): hub?.heard(news)
                        case .startsQueued(let ids): starts?.ring(ids)
                        case .flowsSettled(let ids): settled.settled(ids)
                        }
                    }
                } catch {
                    refused.increment()
                    // Said once per kind of refusal, not at every event of a newer process.
                    if said.insert(error.description).inserted {
                        logger.error("refused an event on the bus: \(error); its news is found by the next poll instead")
                    }
                }
            }
        } catch {
            logger.debug("the bus subscription ended", metadata: ["error": "\(error)"])
        }
    }
}
