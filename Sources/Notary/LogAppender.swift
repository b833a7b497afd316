import Coordination
import HawserCore
import HawserWire
import ServiceLifecycle
import Synchronization

/// Writes validated requests to the log with group commit: while one append is being made
/// durable, new requests queue up, and the next append carries all of them in one entry.
///
/// One replica at a time appends, the sequencer (`Quorum.sequencer()`); the others forward their
/// requests to it. The sequencer builds each entry on the chain its own replica has verified,
/// names the entry's position and predecessor in it, and appends it only if the log still ends
/// where it expects (`ReplicatedLog.append(_:after:)`), so no two entries can claim one place. Each
/// entry is stamped with the sequencer's clock; replicas judge time windows by that stamp.
public final class LogAppender: Service, Sendable {
    private struct Pending {
        var requests: [NotarisationRequest]
        /// Forwarded by another replica: appended here whoever this replica thinks sequences.
        var forwarded: Bool
        var continuation: CheckedContinuation<Void, any Error>
    }
    private struct Queue {
        var pending: [Pending] = []
        var closed = false
    }
    /// Where this replica's next entry goes.
    private struct Tail {
        var position: UInt64
        var entryHash: SecureHash
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
                continuation.resume(throwing: Self.shuttingDown)
            }
        }
    }

    public func run() async throws {
        let thread = self.thread ?? DedicatedThread(name: "hawser-appender")
        defer { thread.stop() }
        await withTaskExecutorPreference(thread) { await self.appendLoop() }
    }

    private func appendLoop() async {
        var tail: Tail?
        for await _ in wakeUps.cancelOnGracefulShutdown() {
            while let group = takeGroup() {
                do {
                    try await route(group.flatMap(\.requests), forwarded: group[0].forwarded, tail: &tail)
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
        for item in abandoned { item.continuation.resume(throwing: Self.shuttingDown) }
    }

    /// Appends here if this replica sequences (or the requests were forwarded to it), else
    /// forwards them to the sequencer; retries failures a new attempt can fix until the deadline.
    private func route(_ requests: [NotarisationRequest], forwarded: Bool, tail: inout Tail?) async throws {
        let start = ContinuousClock.now
        var backoff = Duration.milliseconds(10)
        while true {
            if let refusal = quorum.health.refusal { throw refusal }
            let target = forwarded ? quorum.membership.me : quorum.sequencer()
            let remaining = appendTimeout - (ContinuousClock.now - start)
            do {
                if target == quorum.membership.me {
                    try await sequence(requests, tail: &tail, within: remaining)
                    return
                }
                if let target, let link {
                    let reply = try await link.forward(codec.forwarded(requests), to: target, timeout: min(remaining, .seconds(2)))
                    if let refusal = codec.forwardRefusal(reply) { throw refusal }
                    return
                }
            } catch let error as APIError where !error.code.isRetryable {
                throw error
            } catch is CancellationError {
                throw Self.shuttingDown
            } catch {
                tail = nil  // a failed append may have landed: learn the log's end again
                if ContinuousClock.now - start + backoff >= appendTimeout { throw Self.timedOut(error) }
            }
            if ContinuousClock.now - start + backoff >= appendTimeout {
                throw APIError(.noQuorum, "no replica could append to the log within \(appendTimeout): fewer than a majority of the replicas are ready")
            }
            try await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .milliseconds(200))
        }
    }

    /// Appends one entry at the log's end as this replica knows it; after a conflict it learns
    /// the new end from its own replica and builds the entry again.
    private func sequence(_ requests: [NotarisationRequest], tail: inout Tail?, within limit: Duration) async throws {
        while true {
            let current: Tail
            if let tail { current = tail } else { current = try await resync(within: limit) }
            tail = current
            let payload = codec.entry(requests, time: clock(), position: current.position + 1, previous: current.entryHash,
                                      sequencer: quorum.membership.me)
            let entryHash = SecureHash.sha256(payload)
            do {
                try await log.append(payload, after: current.position)
                tail = Tail(position: current.position + 1, entryHash: entryHash)
                return
            } catch is LogAppendConflict {
                let learnt = try await resync(within: limit)
                tail = learnt
                // An earlier attempt of this very entry may have landed before its answer was lost.
                if quorum.head(at: current.position + 1)?.entryHash == entryHash { return }
            }
        }
    }

    /// The log's end, as this replica has verified it: waits until the replica has applied
    /// everything the log holds now.
    private func resync(within limit: Duration) async throws -> Tail {
        let end = try await log.lastPosition()
        let applied = quorum.head
        if end < applied.position {
            // Entries this replica applied (and may have confirmed) are gone from the log:
            // appending now would give their positions to other entries.
            let evidence = LogBreak.truncated(end: end, head: applied)
            quorum.broke(evidence)
            throw APIError(.logDiverged, "this replica stopped signing: \(evidence); send the request to another replica")
        }
        if end > 0 {
            let applied = quorum.appliedSignal
            try await withDeadline(limit, "catching up with the log before appending") { try await applied.wait(beyond: end - 1) }
        }
        let head = quorum.head
        return Tail(position: head.position, entryHash: head.entryHash)
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

    static let shuttingDown = APIError(.shuttingDown, "the notary is shutting down; send the request to another replica or retry")

    static func timedOut(_ error: any Error) -> APIError {
        APIError(.timeout, "the log did not take the request in time (\(error)); it may still be decided: ask again with the same transaction id")
    }
}
