import NIOConcurrencyHelpers

/// A one-shot watch left on a node by `existsAndWatch`, `getDataAndWatch` or `getChildrenAndWatch`.
/// It fires at most once; after a reconnect it is re-registered with the server (which reports any
/// change missed while disconnected). If the session expires or the client closes, it fails.
public struct ZooKeeperWatch: Sendable {
    /// The watched node.
    public let path: String
    let box: WatchBox

    /// Waits until the watch fires. Any number of callers may wait; all get the same event.
    /// Throws `ZooKeeperError.sessionExpired` or `.closed` if the watch can no longer fire,
    /// and `CancellationError` if the waiting task is cancelled (the watch itself stays armed).
    public func event() async throws -> WatchEvent {
        try await box.wait()
    }

    /// The event, if the watch already fired.
    public var firedEvent: WatchEvent? {
        box.state.withLockedValue { state in
            if case .fired(.success(let event)) = state.phase { return event }
            return nil
        }
    }
}

/// A thread-safe one-shot result with cancellable waiters.
final class WatchBox: Sendable {
    struct State {
        enum Phase {
            case pending
            case fired(Result<WatchEvent, ZooKeeperError>)
        }
        var phase: Phase = .pending
        var waiters: [UInt64: CheckedContinuation<WatchEvent, any Error>] = [:]
        var cancelledWaiters: Set<UInt64> = []
        var nextWaiter: UInt64 = 0
    }

    let state = NIOLockedValueBox(State())

    func resolve(_ result: Result<WatchEvent, ZooKeeperError>) {
        let waiters: [CheckedContinuation<WatchEvent, any Error>] = state.withLockedValue { state in
            guard case .pending = state.phase else { return [] }
            state.phase = .fired(result)
            defer { state.waiters = [:]; state.cancelledWaiters = [] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(with: result.mapError { $0 }) }
    }

    func wait() async throws -> WatchEvent {
        let id = state.withLockedValue { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<WatchEvent, any Error>) in
                let immediate: Result<WatchEvent, any Error>? = state.withLockedValue { state in
                    switch state.phase {
                    case .fired(let result):
                        return result.mapError { $0 }
                    case .pending:
                        if state.cancelledWaiters.remove(id) != nil { return .failure(CancellationError()) }
                        state.waiters[id] = continuation
                        return nil
                    }
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let waiter: CheckedContinuation<WatchEvent, any Error>? = state.withLockedValue { state in
                guard case .pending = state.phase else { return nil }
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                state.cancelledWaiters.insert(id)  // cancelled before it was stored
                return nil
            }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
