import HawserCore
import HawserWire
import ServiceLifecycle
import Synchronization

/// Writes validated requests to the log with group commit: while one append is being made
/// durable, new requests queue up, and the next append carries all of them in one entry.
/// Each entry is stamped with this node's clock; replicas judge time windows by that stamp.
public final class LogAppender: Service, Sendable {
    private struct Pending {
        var requests: [NotarisationRequest]
        var continuation: CheckedContinuation<Void, any Error>
    }
    private struct Queue {
        var pending: [Pending] = []
        var closed = false
    }

    private let log: any ReplicatedLog
    private let maxRequestsPerEntry: Int
    private let clock: @Sendable () -> Instant
    private let queue = Mutex(Queue())
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let thread: DedicatedThread?

    /// `thread`: the thread to run on, shared with other loops (each calls its `stop`); by
    /// default the appender makes one of its own.
    public init(log: any ReplicatedLog, maxRequestsPerEntry: Int, clock: @escaping @Sendable () -> Instant = Instant.now,
                thread: DedicatedThread? = nil) {
        self.log = log
        self.maxRequestsPerEntry = maxRequestsPerEntry
        self.clock = clock
        self.thread = thread
        (wakeUps, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Returns once `requests` are durable in the log (in one entry, in order).
    public func append(_ requests: [NotarisationRequest]) async throws {
        guard !requests.isEmpty else { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let accepted = queue.withLock { queue in
                guard !queue.closed else { return false }
                queue.pending.append(Pending(requests: requests, continuation: continuation))
                return true
            }
            if accepted {
                wake.yield()
            } else {
                continuation.resume(throwing: APIError(.shuttingDown, "the notary is shutting down; send the request to another replica or retry"))
            }
        }
    }

    public func run() async throws {
        let thread = self.thread ?? DedicatedThread(name: "hawser-appender")
        defer { thread.stop() }
        await withTaskExecutorPreference(thread) { await self.appendLoop() }
    }

    private func appendLoop() async {
        for await _ in wakeUps.cancelOnGracefulShutdown() {
            while let group = takeGroup() {
                let payload = LogBatchCodec.encode(group.flatMap(\.requests), appendTime: clock())
                do {
                    _ = try await log.append(payload)
                    for item in group { item.continuation.resume() }
                } catch {
                    for item in group { item.continuation.resume(throwing: error) }
                }
            }
        }
        let abandoned = queue.withLock { queue in
            queue.closed = true
            defer { queue.pending = [] }
            return queue.pending
        }
        for item in abandoned {
            item.continuation.resume(throwing: APIError(.shuttingDown, "the notary is shutting down; send the request to another replica or retry"))
        }
    }

    /// The next entry's worth of queued submissions; a submission is never split across entries.
    private func takeGroup() -> [Pending]? {
        queue.withLock { queue in
            guard !queue.pending.isEmpty else { return nil }
            var count = 0, taken = 0
            for item in queue.pending {
                if taken > 0 && count + item.requests.count > maxRequestsPerEntry { break }
                count += item.requests.count
                taken += 1
            }
            defer { queue.pending.removeFirst(taken) }
            return Array(queue.pending.prefix(taken))
        }
    }
}
