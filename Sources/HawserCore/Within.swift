import Synchronization

/// Runs `body` and returns its value, or nil once `timeout` has passed. The body is cancelled
/// then, but not waited for: a body that ignores cancellation (a socket read, a request to a
/// server that stopped answering) cannot hold the caller past the deadline, as it would inside a
/// task group, which always waits for its children. Cancelling the caller cancels the body and
/// throws `CancellationError` at once.
public func within<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    let outcome = Outcome<T?>()
    let task = Task {
        do { outcome.finish(.success(try await body())) } catch { outcome.finish(.failure(error)) }
    }
    let deadline = Deadlines.shared.schedule(after: timeout) {
        outcome.finish(.success(nil))
        task.cancel()
    }
    defer { Deadlines.shared.cancel(deadline) }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { outcome.wait($0) }
    } onCancel: {
        outcome.finish(.failure(CancellationError()))
        task.cancel()
    }
}

/// The value of `task`, which others may be waiting for too: cancelling the caller throws
/// `CancellationError` at once and leaves `task` running. Awaiting `task.value` directly cannot be
/// cancelled, so a caller waiting for a shared connection that never comes would hold up a
/// shutdown for ever.
public func value<T: Sendable>(of task: Task<T, any Error>) async throws -> T {
    let outcome = Outcome<T>()
    // Ends with `task`, whoever ends that (its owner cancels it when it closes).
    Task { outcome.finish(await task.result) }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { outcome.wait($0) }
    } onCancel: {
        outcome.finish(.failure(CancellationError()))
    }
}

/// The first result given, handed to the one waiter whenever it arrives.
private final class Outcome<T: Sendable>: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<T, any Error>)
        case finished(Result<T, any Error>)
        case delivered
    }
    private let state = Mutex(State.empty)

    func finish(_ result: Result<T, any Error>) {
        let waiter: CheckedContinuation<T, any Error>? = state.withLock { state in
            switch state {
            case .empty:
                state = .finished(result)
                return nil
            case .waiting(let continuation):
                state = .delivered
                return continuation
            case .finished, .delivered:
                return nil
            }
        }
        waiter?.resume(with: result)
    }

    func wait(_ continuation: CheckedContinuation<T, any Error>) {
        let result: Result<T, any Error>? = state.withLock { state in
            guard case .finished(let result) = state else {
                state = .waiting(continuation)
                return nil
            }
            state = .delivered
            return result
        }
        if let result { continuation.resume(with: result) }
    }
}
