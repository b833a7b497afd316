import Coordination
import HawserCore
import HawserWire
import ServiceLifecycle
import Synchronization

/// Writes validated requests to the log with group commit: while one append is being made
/// durable, new requests queue up, and the next append carries all of them in one entry.
///
/// One replica at a time appends, the sequencer (`Quorum.sequencer()`); the others forward their
/// requests to it. The sequencer builds each entry on the chain its own replica has verified
/// (and, when it learns the log's end anew, a majority has confirmed), names the entry's position
/// and predecessor in it, and appends it only if the log still ends
/// where it expects (`ReplicatedLog.append(_:after:)`), so no two entries can claim one place. Each
/// entry is stamped with the sequencer's clock; replicas judge time windows by that stamp.
public final class LogAppender: Service, Sendable {
    private struct Pending {
        var requests: [NotarisationRequest]
        /// Forwarded by another replica: appended here whoever this replica thinks sequences.
        var forwarded: Bool
        var continuation: CheckedContinuation<Void, any Error>
        /// When it was queued: its append time-out counts from here.
        var queued = ContinuousClock.now
    }
    private struct Queue {
        var pending: [Pending] = []
        var closed = false
    }
    private let log: any ReplicatedLog
    private let link: (any ReplicaLink)?
    private let codec: ReplicaCodec
    private let quorum: Quorum
    private let maxRequestsPerEntry: Int
    private let appendTimeout: Duration
    private let clock: @Sendable () -> Instant
    private let queue = Mutex(Queue())
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let thread: DedicatedThread?

    /// `link`: how to reach the other replicas (nil for a notary on its own). `thread`: the thread
    /// to run on, shared with other loops (each calls its `stop`); by default the appender makes
    /// one of its own.
    public init(log: any ReplicatedLog, link: (any ReplicaLink)? = nil, codec: ReplicaCodec, quorum: Quorum,
                maxRequestsPerEntry: Int, appendTimeout: Duration = .seconds(10),
                clock: @escaping @Sendable () -> Instant = Instant.now, thread: DedicatedThread? = nil) {
        precondition(link != nil || quorum.isAlone, "replicas of a cluster reach each other through a link")
        self.log = log
        self.link = link
        self.codec = codec
        self.quorum = quorum
        self.maxRequestsPerEntry = maxRequestsPerEntry
        self.appendTimeout = appendTimeout
        self.clock = clock
        self.thread = thread
        (wakeUps, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Returns once `requests` are durable in the log (in one entry, in order). `forwarded`:
    /// another replica sent them to this one as its sequencer.
    public func append(_ requests: [NotarisationRequest], forwarded: Bool = false) async throws {
        guard !requests.isEmpty else { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let accepted = queue.withLock { queue in
                guard !queue.closed else { return false }
                queue.pending.append(Pending(requests: requests, forwarded: forwarded, continuation: continuation))
                return true
            }
            if accepted {
                wake.yield()
            } else {
                continuation.resume(throwing: AppenderCore.shuttingDown)
            }
        }
    }

    public func run() async throws {
        let thread = self.thread ?? DedicatedThread(name: "hawser-appender")
        defer { thread.stop() }
        await withTaskExecutorPreference(thread) { await self.appendLoop() }
    }

    private func appendLoop() async {
        var core = AppenderCore(me: quorum.membership.me, codec: codec)
        for await _ in wakeUps.cancelOnGracefulShutdown() {
            while let group = takeGroup() {
                do {
                    try await route(group.flatMap(\.requests), forwarded: group[0].forwarded, since: group.map(\.queued).min()!,
                                    core: &core)
                    for item in group { item.continuation.resume() }
                } catch {
                    for item in group { item.continuation.resume(throwing: Notary.apiError(error)) }
                }
            }
        }
        let abandoned = queue.withLock { queue in
            queue.closed = true
            defer { queue.pending = [] }
            return queue.pending
        }
        for item in abandoned { item.continuation.resume(throwing: AppenderCore.shuttingDown) }
    }

    /// Appends here if this replica sequences (or the requests were forwarded to it), else
    /// forwards them to the sequencer; retries failures a new attempt can fix until the append
    /// time-out, counted from `start`, when the group's oldest request was queued: while the log
    /// does not answer, every group fails by then, however many wait behind it.
    private func route(_ requests: [NotarisationRequest], forwarded: Bool, since start: ContinuousClock.Instant,
                       core: inout AppenderCore) async throws {
        var retry = AppenderCore.Retry(timeout: appendTimeout)
        while true {
            if let refusal = quorum.health.refusal { throw refusal }
            let remaining = appendTimeout - (ContinuousClock.now - start)
            guard remaining > .zero else {
                throw AppenderCore.timedOut(waitingFor: appendTimeout)
            }
            var failure: (any Error)?
            do {
                switch core.target(forwarded: forwarded, sequencer: quorum.sequencer()) {
                case .here:
                    try await sequence(requests, core: &core, within: remaining)
                    return
                case .forward(let target):
                    guard let link else { break }
                    let reply = try await link.forward(codec.forwarded(requests), to: target, timeout: min(remaining, .seconds(2)))
                    if let refusal = codec.forwardRefusal(reply) { throw refusal }
                    return
                case .nobody:
                    break
                }
            } catch {
                if let fatal = AppenderCore.fatal(error) { throw fatal }
                core.forget()
                failure = error
            }
            switch retry.next(after: failure, elapsed: ContinuousClock.now - start) {
            case .wait(let backoff): try await Task.sleep(for: backoff)
            case .giveUp(let error): throw error
            }
        }
    }

    /// Appends one entry at the log's end as this replica knows it; after a conflict it learns
    /// the new end from its own replica and builds the entry again.
    private func sequence(_ requests: [NotarisationRequest], core: inout AppenderCore, within limit: Duration) async throws {
        while true {
            if core.tail == nil { try await resync(&core, within: limit) }
            let entry = core.entry(requests, time: clock())
            do {
                try await withDeadline(limit, "appending to the log") { [log] in try await log.append(entry.payload, after: entry.after) }
                quorum.appendTaken()
                core.appended(entry)
                return
            } catch is LogAppendConflict {
                try await resync(&core, within: limit)
                if entry.landed(quorum.head(at: entry.position)) { return }
            } catch let error where !(error is CoordinationError) && !(error is CancellationError) {
                quorum.appendRefused("\(error)", for: appendTimeout)
                throw error
            }
        }
    }

    /// Learns the log's end, as this replica has verified it: waits until the replica has
    /// applied everything the log holds now, and a majority has confirmed it.
    private func resync(_ core: inout AppenderCore, within limit: Duration) async throws {
        // Bounded like every wait here: a log whose servers have no majority may not answer for
        // minutes. (JetStream asks again about an end before what this replica applied for 10 s
        // before it believes it, longer than the default append time-out: the appender then gives
        // up first, and the replica's own reads stop it if the log did lose entries.)
        // The end answered is the log's end when asked: it is compared with the head as it was
        // then. The replica may apply more meanwhile (another member appending: a change of
        // sequencer), and an end before that later head is no loss.
        let asked = quorum.head
        let end = try await withDeadline(limit, "learning the log's end") { [log] in try await log.lastPosition(applied: asked.position) }
        switch AppenderCore.resync(logEnd: end, applied: asked) {
        case .diverged(let evidence):
            quorum.broke(evidence)
            throw AppenderCore.diverged(evidence)
        case .catchUp(let through):
            if through > 0 {
                let applied = quorum.appliedSignal
                try await withDeadline(limit, "catching up with the log before appending") { try await applied.wait(beyond: through - 1) }
            }
        }
        let head = quorum.head
        guard !core.caughtUp(head, confirmed: quorum.confirmed) else { return }
        let confirmed = quorum.confirmedSignal
        try await withDeadline(limit, "a majority confirming the log's end before appending") {
            try await confirmed.wait(beyond: head.position - 1)
        }
        let confirmedNow = core.caughtUp(head, confirmed: quorum.confirmed)
        assert(confirmedNow, "the wait ends only once a majority confirmed the head")
    }

    /// The next entry's worth of queued submissions, all forwarded or all local; a submission is
    /// never split across entries.
    private func takeGroup() -> [Pending]? {
        queue.withLock { queue in
            guard let first = queue.pending.first else { return nil }
            var count = 0, taken = 0
            for item in queue.pending {
                if taken > 0 && (count + item.requests.count > maxRequestsPerEntry || item.forwarded != first.forwarded) { break }
                count += item.requests.count
                taken += 1
            }
            defer { queue.pending.removeFirst(taken) }
            return Array(queue.pending.prefix(taken))
        }
    }
}
