import Synchronization

/// One observer's stream. Live events that arrive while its history is being read are held back,
/// so the observer sees the history first and each event once, in order: only what is new to its
/// `FlowEventCursor` (which starts where a reconnecting observer left off).
final class FlowWatcher: Sendable {
    private struct Inner {
        var buffering = true
        var held: [FlowEvent] = []
        var cursor: FlowEventCursor
        var finished = false
    }
    private let continuation: AsyncStream<FlowEvent>.Continuation
    private let inner: Mutex<Inner>

    init(_ continuation: AsyncStream<FlowEvent>.Continuation, after cursor: FlowEventCursor) {
        self.continuation = continuation
        inner = Mutex(Inner(cursor: cursor))
    }

    func deliver(_ event: FlowEvent) {
        inner.withLock { inner in
            if inner.buffering { inner.held.append(event) } else { emit(event, &inner) }
        }
    }

    /// The progress read from the journal, and the flow's status as the store holds it, if the
    /// observer should hear it: a `running` status goes first (it came before the steps since),
    /// any other last.
    func deliverHistory(_ history: [FlowEvent], status: FlowEvent?) {
        inner.withLock { inner in
            if let status, status.status == .running { emit(status, &inner) }
            for event in history { emit(event, &inner) }
            if let status, status.status != .running { emit(status, &inner) }
            for event in inner.held { emit(event, &inner) }
            inner.held = []
            inner.buffering = false
            // An observer that had seen the end already hears nothing more.
            if let status, status.isFinal, !inner.finished {
                inner.finished = true
                continuation.finish()
            }
        }
    }

    /// Ends the stream without a final event.
    func finish() {
        inner.withLock { inner in
            inner.finished = true
            continuation.finish()
        }
    }

    private func emit(_ event: FlowEvent, _ inner: inout Inner) {
        guard !inner.finished, inner.cursor.isNew(event) else { return }
        inner.cursor = inner.cursor.advanced(past: event)
        continuation.yield(event)
        if event.isFinal {
            inner.finished = true
            continuation.finish()
        }
    }
}
