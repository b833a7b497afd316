import Flows
import HawserCore
import Synchronization

/// What an RPC worker hears on the bus of the flows it waits for (`flows_settled`, published by
/// the processes that run them): each waiter is woken to read its flow's record at once instead of
/// at its next poll. While the bus is connected the polls are rare; without it they carry the wait.
final class FlowSettledSignals: Sendable {
    private struct State {
        var waiters: [FlowID: [ObjectIdentifier: Wakeup]] = [:]
        var connected = false
    }
    private let state = Mutex(State())

    /// A waiter for `id`'s news, registered before the caller's first read of the record (so that
    /// news between that read and the wait is not missed); `cancel` it when done.
    func waiter(for id: FlowID) -> Waiter {
        let waiter = Waiter(id: id, signals: self)
        state.withLock { $0.waiters[id, default: [:]][ObjectIdentifier(waiter)] = waiter.wakeup }
        return waiter
    }

    /// Flows settled: wake their waiters.
    func settled(_ ids: [FlowID]) {
        let woken = state.withLock { state in ids.flatMap { state.waiters[$0].map { Array($0.values) } ?? [] } }
        for wakeup in woken { wakeup.wake() }
    }

    /// Whether the bus brings news now (the polls may then be rare).
    var connected: Bool {
        get { state.withLock { $0.connected } }
        set { state.withLock { $0.connected = newValue } }
    }

    fileprivate func remove(_ waiter: Waiter) {
        state.withLock { state in
            state.waiters[waiter.id]?[ObjectIdentifier(waiter)] = nil
            if state.waiters[waiter.id]?.isEmpty == true { state.waiters[waiter.id] = nil }
        }
    }

    final class Waiter: Sendable {
        let id: FlowID
        let wakeup = Wakeup()
        private let signals: FlowSettledSignals

        fileprivate init(id: FlowID, signals: FlowSettledSignals) {
            self.id = id
            self.signals = signals
        }

        /// Returns on news of the flow, or after `duration`.
        func sleep(for duration: Duration) async { await wakeup.sleep(for: duration) }

        func cancel() { signals.remove(self) }
    }
}
