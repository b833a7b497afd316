import HawserCore
import Logging
import Sessions
import Synchronization

/// Delivers the node's outbox, at least once and in order per recipient: it reads the outbox in
/// batches (a backlog of any size takes bounded memory), hands each message to the transport,
/// and deletes it once the recipient's node has it in its inbox. A peer that cannot be reached
/// is put off (`LinkBackoff`) with its later messages; the others go on. The outbox is durable,
/// so delivery goes on across restarts of either side.
public final class LinkManager: Sendable {
    private let store: any SessionStore
    private let transport: any PeerTransport
    private let configuration: SessionConfiguration
    private let clock: any FlowClock
    private let logger: Logger
    private let backoff: Mutex<LinkBackoff>
    private let wakes: AsyncStream<Void>
    private let wakeUp: AsyncStream<Void>.Continuation
    /// What to do when a recipient's node refuses a message (the sending flow hears of it).
    private let refused: @Sendable (OutboxMessage, SessionError) async throws -> Void

    init(store: any SessionStore, transport: any PeerTransport, configuration: SessionConfiguration, clock: any FlowClock,
         logger: Logger, refused: @escaping @Sendable (OutboxMessage, SessionError) async throws -> Void) {
        self.store = store
        self.transport = transport
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.refused = refused
        backoff = Mutex(LinkBackoff(policy: configuration.backoff))
        (wakes, wakeUp) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// New outbox rows are durable: look now rather than at the next poll.
    public func wake() { wakeUp.yield() }

    /// Delivers until cancelled.
    public func run() async {
        while !Task.isCancelled {
            if await deliverBatch() { continue }
            await pause()
        }
    }

    /// Failures in a row delivering to `peer` (tests and metrics).
    public func failures(of peer: String) -> Int { backoff.withLock { $0.failures(of: peer) } }

    /// Delivers one batch; true if it was full and went through (more may wait).
    func deliverBatch() async -> Bool {
        let putOff = backoff.withLock { $0.putOff(now: clock.now()) }
        let batch: [OutboxMessage]
        do {
            batch = try await store.outbound(limit: configuration.batchSize, excluding: putOff)
        } catch {
            logger.warning("could not read the outbox", metadata: ["error": "\(error)"])
            return false
        }
        var failed = Set<String>()
        for message in batch where !failed.contains(message.recipient) {
            do {
                if case .refused(let error) = try await transport.deliver(message.payload, to: message.recipient) {
                    try await refused(message, error)
                }
                try await store.acknowledge(message.messageId)
                backoff.withLock { $0.delivered(message.recipient) }
            } catch {
                failed.insert(message.recipient)
                let retryAt = backoff.withLock { $0.failed(message.recipient, now: clock.now()) }
                logger.debug("delivery failed; will retry", metadata: ["recipient": "\(message.recipient)", "error": "\(error)",
                                                                      "retryAt": "\(retryAt)"])
            }
        }
        return batch.count == configuration.batchSize && failed.count < Set(batch.map(\.recipient)).count
    }

    /// Waits for a wake, the next retry or the poll interval, whichever comes first.
    private func pause() async {
        let now = clock.now()
        let untilRetry = backoff.withLock { $0.nextRetry }.map { Duration.microseconds(max(0, $0.microsecondsSinceEpoch - now.microsecondsSinceEpoch)) }
        let delay = min(configuration.pollInterval, untilRetry ?? configuration.pollInterval)
        let wakes = self.wakes
        let clock = self.clock
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await _ in wakes { return } }
            group.addTask { try? await clock.sleep(for: delay) }
            await group.next()
            group.cancelAll()
        }
    }
}
