import NIOConcurrencyHelpers
import NIOCore

/// The bounded buffer behind a subscription. The connection delivers into it from its event loop;
/// one or more tasks take messages out. When it is full, new messages are dropped and counted.
final class MessageQueue: Sendable {
    enum Next: Sendable {
        case message(NATSMessage)
        case finished
        case timedOut
    }

    enum DeliveryResult {
        case delivered
        case dropped(total: UInt64)
        case finished
    }

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Next, any Error>
        var timeout: Scheduled<Void>?
    }

    private struct State {
        var messages = CircularBuffer<NATSMessage>()
        var waiters: [Waiter] = []
        var isFinished = false
        var finishError: NATSError?
        var nextWaiterID: UInt64 = 0
        var dropped: UInt64 = 0
    }

    let limit: Int
    private let eventLoop: any EventLoop
    private let state = NIOLockedValueBox(State())

    init(limit: Int, eventLoop: any EventLoop) {
        self.limit = max(1, limit)
        self.eventLoop = eventLoop
    }

    var droppedCount: UInt64 { state.withLockedValue { $0.dropped } }
    var bufferedCount: Int { state.withLockedValue { $0.messages.count } }

    func deliver(_ message: NATSMessage) -> DeliveryResult {
        let (waiter, result): (Waiter?, DeliveryResult) = state.withLockedValue { s in
            if s.isFinished { return (nil, .finished) }
            if !s.waiters.isEmpty { return (s.waiters.removeFirst(), .delivered) }
            if s.messages.count >= limit {
                s.dropped += 1
                return (nil, .dropped(total: s.dropped))
            }
            s.messages.append(message)
            return (nil, .delivered)
        }
        if let waiter {
            waiter.timeout?.cancel()
            waiter.continuation.resume(returning: .message(message))
        }
        return result
    }

    /// Ends the queue. Buffered messages are still handed out; then waiters get `.finished`, or
    /// `error` is thrown if given.
    func finish(error: NATSError? = nil) {
        let waiters: [Waiter] = state.withLockedValue { s in
            guard !s.isFinished else { return [] }
            s.isFinished = true
            s.finishError = error
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters {
            w.timeout?.cancel()
            if let error { w.continuation.resume(throwing: error) } else { w.continuation.resume(returning: .finished) }
        }
    }

    /// The next message; `.timedOut` if none arrives within `timeout`. Throws `CancellationError`
    /// when the task is cancelled while waiting.
    func next(timeout: Duration? = nil) async throws -> Next {
        let id = state.withLockedValue { s in
            defer { s.nextWaiterID += 1 }
            return s.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Next, any Error>) in
                let immediate: Result<Next, any Error>? = state.withLockedValue { s in
                    if let m = s.messages.popFirst() { return .success(.message(m)) }
                    if s.isFinished {
                        if let e = s.finishError { return .failure(e) }
                        return .success(.finished)
                    }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    var scheduled: Scheduled<Void>?
                    if let timeout {
                        scheduled = eventLoop.scheduleTask(in: timeout.timeAmount) { [weak self] in
                            self?.resolveWaiter(id, with: .success(.timedOut))
                        }
                    }
                    s.waiters.append(Waiter(id: id, continuation: continuation, timeout: scheduled))
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            resolveWaiter(id, with: .failure(CancellationError()))
        }
    }

    private func resolveWaiter(_ id: UInt64, with result: Result<Next, any Error>) {
        let waiter: Waiter? = state.withLockedValue { s in
            guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.waiters.remove(at: i)
        }
        guard let waiter else { return }
        waiter.timeout?.cancel()
        waiter.continuation.resume(with: result)
    }
}
