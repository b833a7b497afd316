import Synchronization

/// One observer's stream. Live events that arrive while its history is being read are held back,
/// so the observer sees the history first and each progress step once, in order.
final class FlowWatcher: Sendable {
    private struct Inner {
        var buffering = true
        var held: [FlowEvent] = []
        var lastSequence = -1
        var finished = false
    }
    private let continuation: AsyncStream<FlowEvent>.Continuation
    private let inner = Mutex(Inner())

    init(_ continuation: AsyncStream<FlowEvent>.Continuation) { self.continuation = continuation }

    func deliver(_ event: FlowEvent) {
        inner.withLock { inner in
            if inner.buffering { inner.held.append(event) } else { emit(event, &inner) }
        }
    }

    func deliverHistory(_ history: [FlowEvent], final: FlowEvent?) {
        inner.withLock { inner in
            for event in history { emit(event, &inner) }
            if let final { emit(final, &inner) }
            for event in inner.held { emit(event, &inner) }
            inner.held = []
            inner.buffering = false
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
        guard !inner.finished else { return }
        if let sequence = event.sequence {
            guard sequence > inner.lastSequence else { return }
            inner.lastSequence = sequence
        }
        continuation.yield(event)
        if event.isFinal {
            inner.finished = true
            continuation.finish()
        }
    }
}
