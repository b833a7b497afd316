import Synchronization

/// A queue whose one consumer takes everything posted since it last looked, in posting order.
///
/// The notary's gRPC stream and its client post one message at a time from many tasks and hand
/// them on in groups: what arrived together is decided together, and answers ready together go
/// out in one write. Posting never waits; `takeAll` waits only while the box is empty.
public final class Mailbox<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var taker: CheckedContinuation<[Element]?, Never>?
        var closed = false
    }
    private let state = Mutex(State())

    public init() {}

    /// Adds `element`; false (and nothing added) once the box is closed.
    @discardableResult
    public func post(_ element: Element) -> Bool {
        let taker = state.withLock { state -> CheckedContinuation<[Element]?, Never>?? in
            guard !state.closed else { return .none }
            guard let taker = state.taker else {
                state.items.append(element)
                return .some(nil)
            }
            state.taker = nil
            return .some(taker)
        }
        switch taker {
        case .none: return false
        case .some(nil): return true
        case .some(let waiting?):
            waiting.resume(returning: [element])
            return true
        }
    }

    /// Everything posted and not yet taken, waiting while there is nothing; nil once the box is
    /// closed and emptied, or when the waiting task is cancelled. One consumer at a time.
    public func takeAll() async -> [Element]? {
        if let ready = takeReady() { return ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[Element]?, Never>) in
                let now = state.withLock { state -> [Element]?? in
                    if !state.items.isEmpty {
                        defer { state.items = [] }
                        return .some(state.items)
                    }
                    if state.closed || Task.isCancelled { return .some(nil) }
                    precondition(state.taker == nil, "a mailbox has one consumer")
                    state.taker = continuation
                    return .none
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let taker = state.withLock { state in
                defer { state.taker = nil }
                return state.taker
            }
            taker?.resume(returning: nil)
        }
    }

    /// No more posts; the consumer still takes what is left, then gets nil.
    public func close() {
        let taker = state.withLock { state in
            state.closed = true
            defer { state.taker = nil }
            return state.taker
        }
        taker?.resume(returning: nil)
    }

    private func takeReady() -> [Element]? {
        state.withLock { state in
            guard !state.items.isEmpty else { return nil }
            defer { state.items = [] }
            return state.items
        }
    }
}
