import Synchronization

/// Holds an election's status and hands every change to the streams that watch it. Shared by
/// the election shells of every backend.
public final class StatusBroadcast: Sendable {
    private struct State {
        var status = ElectionStatus.initial
        var watchers: [Int: AsyncStream<ElectionStatus>.Continuation] = [:]
        var nextID = 0
        var finished = false
    }
    private let state = Mutex(State())

    public init() {}

    public var status: ElectionStatus { state.withLock { $0.status } }

    /// Applies `change`; watchers hear the new status if it differs.
    public func update(_ change: (inout ElectionStatus) -> Void) {
        let (status, watchers) = state.withLock { state -> (ElectionStatus?, [AsyncStream<ElectionStatus>.Continuation]) in
            var next = state.status
            change(&next)
            guard next != state.status else { return (nil, []) }
            state.status = next
            return (next, Array(state.watchers.values))
        }
        if let status { for watcher in watchers { watcher.yield(status) } }
    }

    /// The statuses from now on, starting with the current one.
    public func stream() -> AsyncStream<ElectionStatus> {
        let (stream, continuation) = AsyncStream<ElectionStatus>.makeStream(bufferingPolicy: .unbounded)
        let id = state.withLock { state -> Int? in
            continuation.yield(state.status)
            if state.finished { return nil }
            state.nextID += 1
            state.watchers[state.nextID] = continuation
            return state.nextID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Ends every stream (the election stopped).
    public func finish() {
        let watchers = state.withLock { state in
            state.finished = true
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.finish() }
    }
}
