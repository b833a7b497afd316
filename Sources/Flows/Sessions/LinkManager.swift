import HawserCore
import Logging
import Sessions
import Synchronization

/// Delivers the node's outbox, at least once and in order per recipient: it reads the outbox in
/// batches (a backlog of any size takes bounded memory) and hands each recipient's messages, in
/// order, to the transport, each recipient on its own task, so that one that does not answer
/// holds up only its own messages. A message is deleted once the recipient's node has it in its
/// inbox. A recipient that cannot be reached is put off (`LinkBackoff`) with its later messages.
/// The outbox is durable, so delivery goes on across restarts of either side.
public final class LinkManager: Sendable {
    private let store: any SessionStore
    private let transport: any PeerTransport
    private let configuration: SessionConfiguration
    private let clock: any FlowClock
    private let logger: Logger
    private let backoff: Mutex<LinkBackoff>
    /// Recipients whose messages a task is delivering now.
    private let busy = Mutex<Set<String>>([])
    private let wakeup = Wakeup()
    /// What to do when a recipient's node refuses a message (the sending flow hears of it).
    private let refused: @Sendable (OutboxMessage, SessionError) async throws -> Void
    /// Whether this process owns the outbox now (a hot-warm standby does not): only then it delivers.
    private let isActive: @Sendable () -> Bool
    /// A recipient that cannot be reached is said once a minute: a sender that logged nothing
    /// while a peer's listener refused its connections left its operator blind (found from outside).
    private let failures = RefusalLog(interval: .seconds(60))

    init(store: any SessionStore, transport: any PeerTransport, configuration: SessionConfiguration, clock: any FlowClock,
         logger: Logger, isActive: @escaping @Sendable () -> Bool,
         refused: @escaping @Sendable (OutboxMessage, SessionError) async throws -> Void) {
        self.isActive = isActive
        self.store = store
        self.transport = transport
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.refused = refused
        backoff = Mutex(LinkBackoff(policy: configuration.backoff))
    }

    /// New outbox rows are durable: look now rather than at the next poll.
    public func wake() { wakeup.wake() }

    /// New outbox rows for `recipients` are durable: look now, unless a delivery to each of them
    /// is under way. The end of a delivery looks again, and a read before it would leave their
    /// rows behind all the same (a recipient gets one delivery at a time): under load, most
    /// commits write to a recipient being delivered to, and those reads were most of the outbox's.
    public func wake(for recipients: Set<String>) {
        if recipients.isEmpty || !busy.withLock({ recipients.isSubset(of: $0) }) { wakeup.wake() }
    }

    /// Delivers until cancelled; the recipients' tasks end with it.
    public func run() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let (batch, full) = await nextBatch()
                for (recipient, messages) in batch {
                    group.addTask {
                        await self.deliver(messages, to: recipient)
                        self.busy.withLock { _ = $0.remove(recipient) }
                        self.wake()  // its later messages (see `wake(for:)`)
                    }
                }
                // A full batch may have left other recipients' messages behind: read on at once.
                if !full { await pause() }
            }
        }
    }

    /// Failures in a row delivering to `peer` (tests and metrics).
    public func failures(of peer: String) -> Int { backoff.withLock { $0.failures(of: peer) } }

    /// The oldest outbox messages of recipients neither put off nor being delivered to, by
    /// recipient in order (those recipients are marked busy), and whether the batch was full.
    func nextBatch() async -> (batch: [(String, [OutboxMessage])], full: Bool) {
        guard isActive() else { return ([], false) }
        let excluded = backoff.withLock { $0.putOff(now: clock.now()) }.union(busy.withLock { $0 })
        let batch: [OutboxMessage]
        do {
            batch = try await store.outbound(limit: configuration.batchSize, excluding: excluded)
        } catch {
            logger.warning("could not read the outbox", metadata: ["error": "\(error)"])
            return ([], false)
        }
        var order: [String] = []
        var byRecipient: [String: [OutboxMessage]] = [:]
        for message in batch {
            if byRecipient[message.recipient] == nil { order.append(message.recipient) }
            byRecipient[message.recipient, default: []].append(message)
        }
        busy.withLock { $0.formUnion(order) }
        return (order.map { ($0, byRecipient[$0]!) }, batch.count == configuration.batchSize)
    }

    /// Delivers `messages` to `recipient` in order; a failure, or messages the recipient's node
    /// did not take, put it off.
    func deliver(_ messages: [OutboxMessage], to recipient: String) async {
        do {
            let answers = try await transport.deliver(messages.map(\.payload), to: recipient)
            let taken = messages.prefix(answers.count)
            for (message, answer) in zip(taken, answers) {
                if case .refused(let error) = answer { try await refused(message, error) }
            }
            try await store.acknowledge(taken.map(\.messageId))
            guard answers.count == messages.count else { throw PartlyTaken(taken: answers.count, of: messages.count) }
            backoff.withLock { $0.delivered(recipient) }
        } catch {
            let retryAt = backoff.withLock { $0.failed(recipient, now: clock.now()) }
            var metadata: Logger.Metadata = ["recipient": "\(recipient)", "error": "\(error)", "retryAt": "\(retryAt)"]
            if let unlogged = failures.admit(recipient, at: .now) {
                metadata["failuresUnloggedSinceLast"] = "\(unlogged)"
                logger.warning("could not deliver to a peer; its messages wait in the outbox and are sent again with back-off", metadata: metadata)
            } else {
                logger.debug("delivery failed; will retry", metadata: metadata)
            }
        }
    }

    /// The recipient's node took only the first `taken` messages of a delivery.
    struct PartlyTaken: Error, CustomStringConvertible {
        var taken: Int
        var of: Int
        var description: String { "the node took \(taken) of \(of) messages" }
    }

    /// How often a process that does not deliver looks whether it does now (a standby that took
    /// over, a hot-hot process that won partition 0): a look at a flag, no read of the outbox.
    static let inactiveRecheck = Duration.milliseconds(200)

    /// Waits for a wake, the next retry or the poll interval, whichever comes first.
    private func pause() async {
        let now = clock.now()
        let untilRetry = backoff.withLock { $0.nextRetry(after: now) }.map { Duration.microseconds(max(0, $0.microsecondsSinceEpoch - now.microsecondsSinceEpoch)) }
        let poll = isActive() ? configuration.pollInterval : min(configuration.pollInterval, Self.inactiveRecheck)
        let delay = min(poll, untilRetry ?? poll)
        // (An AsyncStream would not do: cancelling the task that waits on it ends the stream, and
        // every later pause would return at once.)
        let (wakeup, clock) = (self.wakeup, self.clock)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await wakeup.wait() }
            group.addTask { try? await clock.sleep(for: delay) }
            await group.next()
            group.cancelAll()
        }
    }
}
