import HawserCore
import HawserWire
import Synchronization

/// Requests waiting for their answers, by transaction id. A front registers before it appends, so
/// an answer can never arrive unseen; the replica fulfils every waiter of a transaction it decides
/// (the first outcome is final, so any answer for that id is the right one).
public final class AnswerWaiters: Sendable {
    private let waiting = Mutex<[SecureHash: [AnswerSlot]]>([:])

    public init() {}

    public func register(_ txId: SecureHash) -> AnswerSlot { register([txId])[0] }

    /// One slot per transaction id, in order, registered under one lock.
    public func register(_ txIds: [SecureHash]) -> [AnswerSlot] {
        let slots = txIds.map(AnswerSlot.init)
        waiting.withLock { table in
            for slot in slots { table[slot.txId, default: []].append(slot) }
        }
        return slots
    }

    /// Drops a slot that will no longer be awaited (its append failed or it timed out).
    public func remove(_ slot: AnswerSlot) {
        waiting.withLock { table in
            table[slot.txId]?.removeAll { $0 === slot }
            if table[slot.txId]?.isEmpty == true { table[slot.txId] = nil }
        }
    }

    /// Whether anyone waits for `txId`; lets the replica skip building proofs nobody reads.
    public func isWaiting(for txId: SecureHash) -> Bool { waiting.withLock { $0[txId] != nil } }

    /// Hands `answer` to every waiter of its transaction.
    public func fulfil(_ answer: NotarisationAnswer) {
        let slots = waiting.withLock { $0.removeValue(forKey: answer.txId) } ?? []
        for slot in slots { slot.resolve(.success(answer)) }
    }
}

/// One request's place in `AnswerWaiters`: resolved once (the first result wins), awaited once.
public final class AnswerSlot: Sendable {
    public let txId: SecureHash
    private enum State {
        case pending
        case awaiting(CheckedContinuation<Result<NotarisationAnswer, APIError>, Never>)
        case resolved(Result<NotarisationAnswer, APIError>)
    }
    private let state = Mutex<State>(.pending)

    init(txId: SecureHash) { self.txId = txId }

    func resolve(_ result: Result<NotarisationAnswer, APIError>) {
        let continuation = state.withLock { state -> CheckedContinuation<Result<NotarisationAnswer, APIError>, Never>? in
            switch state {
            case .pending: state = .resolved(result); return nil
            case .awaiting(let c): state = .resolved(result); return c
            case .resolved: return nil
            }
        }
        continuation?.resume(returning: result)
    }

    func result() async -> Result<NotarisationAnswer, APIError> {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Result<NotarisationAnswer, APIError>? in
                switch state {
                case .pending: state = .awaiting(continuation); return nil
                case .resolved(let result): return result
                case .awaiting: preconditionFailure("an answer slot is awaited once")
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

extension AnswerWaiters {
    /// Awaits every slot with one deadline for them all (on `Deadlines.shared`): a slot not
    /// answered within `limit` gets `timeout`, and cancellation answers the rest with
    /// `shutting_down`. Unanswered slots are removed from the table.
    public func results(of slots: [AnswerSlot], within limit: Duration) async -> [Result<NotarisationAnswer, APIError>] {
        var results = [Result<NotarisationAnswer, APIError>]()
        results.reserveCapacity(slots.count)
        await self.results(of: slots, within: limit) { _, result in results.append(result) }
        return results
    }

    /// The same, handing each slot's result to `each` (with the slot's index) in slot order, as
    /// soon as it and the slots before it are resolved. The slots of one log append resolve
    /// together (their entry is confirmed and signed at once), so order holds none of them back.
    public func results(of slots: [AnswerSlot], within limit: Duration,
                        each: (Int, Result<NotarisationAnswer, APIError>) -> Void) async {
        let timer = Deadlines.shared.schedule(after: limit) {
            let timeout = APIError(.timeout, "no outcome within \(limit); the request may still be decided: ask again with the same transaction id")
            for slot in slots { slot.resolve(.failure(timeout)) }
        }
        var unanswered = [AnswerSlot]()
        await withTaskCancellationHandler {
            for (index, slot) in slots.enumerated() {
                let result = await slot.result()
                if case .failure = result { unanswered.append(slot) }
                each(index, result)
            }
        } onCancel: {
            for slot in slots { slot.resolve(.failure(APIError(.shuttingDown, "the notary is shutting down; retry the request"))) }
        }
        Deadlines.shared.cancel(timer)
        for slot in unanswered { remove(slot) }
    }
}
