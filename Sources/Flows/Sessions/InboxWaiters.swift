import Sessions
import Synchronization

/// Flows waiting for an inbox message, by key: `receive` waits here, and whoever writes the
/// message to the inbox (`SessionHub.accept`, a refusal's answer) tells it. The inbox is looked
/// at after the waiter is registered, so a message written meanwhile is not missed.
final class InboxWaiters: Sendable {
    private struct State {
        var waiting: [SessionMessageKey: [Int: AsyncStream<Void>.Continuation]] = [:]
        var next = 0
    }
    private let state = Mutex(State())

    /// `look` (the inbox) once now and again after each notice, until it finds the message or
    /// `timeout` passes (nil). Cancellation ends the wait with `CancellationError`.
    func wait(for key: SessionMessageKey, timeout: Duration, clock: any FlowClock,
              look: @escaping @Sendable () async throws -> InboxMessage?) async throws -> InboxMessage? {
        let (notices, notice) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            defer { state.next += 1 }
            state.waiting[key, default: [:]][state.next] = notice
            return state.next
        }
        defer {
            state.withLock { state in
                state.waiting[key]?[id] = nil
                if state.waiting[key]?.isEmpty == true { state.waiting[key] = nil }
            }
        }
        if let found = try await look() { return found }
        let found = try await withThrowingTaskGroup(of: InboxMessage?.self) { group in
            group.addTask {
                for await _ in notices { if let found = try await look() { return found } }
                return nil
            }
            group.addTask {
                try await clock.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        try Task.checkCancellation()
        // The message may have come just as the time ran out.
        if let found { return found }
        return try await look()
    }

    /// The message `key` is in the inbox.
    func notify(_ key: SessionMessageKey) {
        for notice in state.withLock({ Array(($0.waiting[key] ?? [:]).values) }) { notice.yield() }
    }
}
