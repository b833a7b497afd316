import Synchronization

/// A queue whose one consumer takes everything posted since it last looked, in posting order.
///
/// The notary's gRPC stream and its client post one message at a time from many tasks and hand
/// them on in groups: what arrived together is decided together, and answers ready together go
/// out in one write. Posting never waits; `takeAll` waits only while the box is empty.
public final class Mailbox<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        /// The consumer, waiting for the box to be non-empty (or closed).
        var taker: CheckedContinuation<Void, Never>?
        var closed = false
    }
    private let state = Mutex(State())

    public init() {}

    /// Adds `element`; false (and nothing added) once the box is closed.
    @discardableResult
    public func post(_ element: Element) -> Bool {
        let (added, taker) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.closed else { return (false, nil) }
            state.items.append(element)
            defer { state.taker = nil }
            return (true, state.taker)
        }
        // Woken, the taker takes what is there when it runs: the posts made meanwhile go with this one.
        taker?.resume()
        return added
    }

    /// Everything posted and not yet taken, waiting while there is nothing; nil once the box is
    /// closed and emptied, or when the waiting task is cancelled. One consumer at a time.
    public func takeAll() async -> [Element]? {
        while true {
            let (ready, done) = state.withLock { state -> ([Element]?, Bool) in
                if !state.items.isEmpty {
                    defer { state.items = [] }
                    return (state.items, true)
                }
                return (nil, state.closed)
            }
            if let ready { return ready }
            if done || Task.isCancelled { return nil }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let wait = state.withLock { state -> Bool in
                        guard state.items.isEmpty && !state.closed && !Task.isCancelled else { return false }
                        precondition(state.taker == nil, "a mailbox has one consumer")
                        state.taker = continuation
                        return true
                    }
                    if !wait { continuation.resume() }
                }
            } onCancel: {
                wakeTaker()
            }
        }
    }

    /// No more posts; the consumer still takes what is left, then gets nil.
    public func close() {
        state.withLock { $0.closed = true }
        wakeTaker()
    }

    private func wakeTaker() {
        let taker = state.withLock { state in
            defer { state.taker = nil }
            return state.taker
        }
        taker?.resume()
    }
}
