import Flows
import JetStream
import Logging
import NIOCore
import ServiceLifecycle

/// A hot-hot process on its node's bus (`ha.bus`, docs/node.md "The bus"): it publishes what its
/// session hub wrote to the shared database (`SessionHub.announce`) and hands what the other
/// processes published to the hub (`SessionHub.heard`). The bus only hastens: every event is also
/// found by a poll, so a process starts and serves without it, and one that loses it (a NATS
/// server restarts) goes on at the pace of its polls until it is back.
final class NodeBus: Service, Sendable {
    private let settings: BusSettings
    private let subject: String
    private let id: String
    private let hub: SessionHub
    private let logger: Logger
    private let outgoing: AsyncStream<SessionNews>
    /// Events kept while the connection is being made, newest kept; more are dropped (the polls find them).
    static let backlog = 4_096

    init(_ settings: BusSettings, election: String, id: String, hub: SessionHub, logger: Logger) {
        self.settings = settings
        subject = settings.eventsSubject(election: election)
        self.id = id
        self.hub = hub
        self.logger = { var logger = logger; logger[metadataKey: "component"] = "bus"; return logger }()
        let (outgoing, continuation) = AsyncStream.makeStream(of: SessionNews.self, bufferingPolicy: .bufferingNewest(Self.backlog))
        self.outgoing = outgoing
        hub.announce { continuation.yield($0) }
    }

    func run() async throws {
        var options = NATSOptions(servers: settings.servers, name: "hawser-node-\(id)")
        options.retryOnFailedInitialConnect = true
        options.pingInterval = .seconds(2)
        options.echo = false  // a process's own events are no news to it
        logger.info("connecting to the bus", metadata: ["servers": "\(settings.servers)", "subject": "\(subject)"])
        await cancelWhenGracefulShutdown { [options, logger, subject] in
            let client: NATSClient
            do { client = try await NATSClient.connect(options) } catch {
                if !Task.isCancelled { logger.error("could not connect to the bus; polls alone find what other processes write", metadata: ["error": "\(error)"]) }
                return
            }
            logger.notice("on the bus", metadata: ["subject": "\(subject)"])
            await withDiscardingTaskGroup { group in
                group.addTask { await self.listen(client) }
                group.addTask { await self.publish(client) }
            }
            await client.close()
        }
    }

    private func publish(_ client: NATSClient) async {
        for await news in outgoing {
            do {
                try await client.publish(subject, payload: BusEvents.encode(news, sender: id))
            } catch {
                logger.debug("could not publish on the bus", metadata: ["error": "\(error)"])
            }
        }
    }

    private func listen(_ client: NATSClient) async {
        let subscription: Subscription
        do { subscription = try await client.subscribe(subject) } catch {
            logger.error("could not subscribe on the bus; polls alone find what other processes write", metadata: ["error": "\(error)"])
            return
        }
        var refused = Set<String>()
        do {
            for try await message in subscription {
                do {
                    let (sender, news) = try BusEvents.decode(Array(buffer: message.payload))
                    if sender != id { hub.heard(news) }
                } catch {
                    // Said once per kind of refusal, not at every event of a newer process.
                    if refused.insert(error.description).inserted {
                        logger.error("refused an event on the bus: \(error); its news is found by the next poll instead")
                    }
                }
            }
        } catch {
            logger.debug("the bus subscription ended", metadata: ["error": "\(error)"])
        }
    }
}
