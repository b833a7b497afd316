import Sessions
import Synchronization

/// Flows waiting for an inbox message, by key: `receive` waits here, and whoever writes the
/// message to the inbox (`SessionHub.accept`, a refusal's answer) hands it over once it is
/// written, so the waiter need not read it back; news that another process wrote it makes the
/// waiter read it. The inbox is looked at after the waiter is
/// registered, so a message written meanwhile is not missed.
final class InboxWaiters: Sendable {
    private struct State {
        var waiting: [SessionMessageKey: [Int: AsyncStream<SessionMessage?>.Continuation]] = [:]
        var next = 0
    }
    private let state = Mutex(State())

    /// `look` (the inbox) once now, then waits for the message to be handed over, until
    /// `timeout` passes (nil). With `relook`, it also looks again every `relook`: for an inbox
    /// that other processes write too (a hot-hot node's), whose writes are not handed over here.
    /// Cancellation ends the wait with `CancellationError`.
    func wait(for key: SessionMessageKey, timeout: Duration, relook: Duration? = nil, clock: any FlowClock,
              look: @escaping @Sendable () async throws -> SessionMessage?) async throws -> SessionMessage? {
        // A notice is the message, or nil: look at the inbox again (another process wrote it).
        let (notices, notice) = AsyncStream<SessionMessage?>.makeStream(bufferingPolicy: .bufferingNewest(1))
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
        let found = try await withThrowingTaskGroup(of: SessionMessage?.self) { group in
            group.addTask {
                for await message in notices {
                    if let message { return message }
                    if let found = try await look() { return found }
                }
                return nil
            }
            group.addTask {
                try await clock.sleep(for: timeout)
                return nil
            }
            if let relook {
                group.addTask {
                    while true {
                        try await clock.sleep(for: relook)
                        if let found = try await look() { return found }
                    }
                }
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        try Task.checkCancellation()
        // The message may have come just as the time ran out.
        if let found { return found }
        return try await look()
    }

    /// `message` is in the inbox now (written by the caller, under its key).
    func notify(_ message: SessionMessage) {
        for notice in state.withLock({ Array(($0.waiting[message.key] ?? [:]).values) }) { notice.yield(message) }
    }

    /// Messages under `keys` are in the inbox now (another process wrote them): their waiters look.
    func lookAgain(_ keys: [SessionMessageKey]) {
        for notice in state.withLock({ state in keys.flatMap { (state.waiting[$0] ?? [:]).values } }) { notice.yield(nil) }
    }
}
