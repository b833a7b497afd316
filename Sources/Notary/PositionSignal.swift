import Synchronization

/// A position that only moves forward (a log's end, a replica's progress) and the tasks
/// waiting for it to pass theirs.
public final class PositionSignal: Sendable {
    private struct State {
        var last: UInt64
        var waiting: [UInt64: (after: UInt64, continuation: CheckedContinuation<Void, any Error>)] = [:]
        var nextId: UInt64 = 0
    }
    private let state: Mutex<State>

    public init(_ value: UInt64) { state = Mutex(State(last: value)) }

    public var value: UInt64 { state.withLock { $0.last } }

    public func advance(to position: UInt64) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.last = max(state.last, position)
            let due = state.waiting.filter { $0.value.after < state.last }
            for id in due.keys { state.waiting[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    /// Returns once the value exceeds `position`; throws `CancellationError` if cancelled first.
    public func wait(beyond position: UInt64) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextId += 1
            return state.nextId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let ready = state.withLock { state -> Bool in
                    if state.last > position || Task.isCancelled { return true }
                    state.waiting[id] = (position, continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let cancelled = state.withLock { $0.waiting.removeValue(forKey: id) }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }
}
