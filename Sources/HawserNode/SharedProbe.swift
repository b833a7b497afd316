import Synchronization

/// One read of the shared database answers the health checks of every stand of a process that
/// asks within `fresh` of its success, and those that ask while it is under way: a hot-hot process
/// with 16 partitions read it 32 times a second (each partition's election checks its health every
/// round), a third of what it asked of the database with no flow running (BENCHMARKS.md).
/// A failure is not kept: the next check reads again.
final class SharedProbe: Sendable {
    private struct State {
        var succeeded: ContinuousClock.Instant?
        var inFlight: (task: Task<Void, any Error>, since: ContinuousClock.Instant)?
    }
    private let probe: @Sendable () async throws -> Void
    private let fresh: Duration
    private let state = Mutex(State())

    init(fresh: Duration, probe: @escaping @Sendable () async throws -> Void) {
        self.fresh = fresh
        self.probe = probe
    }

    func callAsFunction() async throws {
        let now = ContinuousClock.now
        let read: (task: Task<Void, any Error>, since: ContinuousClock.Instant)? = state.withLock { state in
            if let succeeded = state.succeeded, now - succeeded < fresh { return nil }
            // A read under way is joined while it is young; one that hangs is not waited on for ever.
            if let inFlight = state.inFlight, now - inFlight.since < fresh { return inFlight }
            let task = Task { [probe] in try await probe() }
            state.inFlight = (task, now)
            return (task, now)
        }
        guard let read else { return }
        do {
            try await read.task.value
            // The database answered a read sent at `since`: that is how fresh the verdict is.
            state.withLock { state in
                state.succeeded = max(state.succeeded ?? read.since, read.since)
                if state.inFlight?.task == read.task { state.inFlight = nil }
            }
        } catch {
            state.withLock { state in if state.inFlight?.task == read.task { state.inFlight = nil } }
            throw error
        }
    }
}
