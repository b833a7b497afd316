import HawserCore
import HawserWire
import Synchronization

/// Requests waiting for their answers, by transaction id. A front registers before it appends, so
/// an answer can never arrive unseen; the replica fulfils every waiter of a transaction it decides
/// (the first outcome is final, so any answer for that id is the right one).
public final class AnswerWaiters: Sendable {
    private let waiting = Mutex<[SecureHash: [AnswerSlot]]>([:])

    public init() {}

    public func register(_ txId: SecureHash) -> AnswerSlot {
        let slot = AnswerSlot(txId: txId)
        waiting.withLock { $0[txId, default: []].append(slot) }
        return slot
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

/// One request's place in `AnswerWaiters`: resolved once, awaited once.
public final class AnswerSlot: Sendable {
    public let txId: SecureHash
    private enum State {
        case pending
        case awaiting(CheckedContinuation<NotarisationAnswer, any Error>)
        case resolved(Result<NotarisationAnswer, any Error>)
    }
    private let state = Mutex<State>(.pending)

    init(txId: SecureHash) { self.txId = txId }

    func resolve(_ result: Result<NotarisationAnswer, any Error>) {
        let continuation: CheckedContinuation<NotarisationAnswer, any Error>? = state.withLock { state in
            switch state {
            case .pending: state = .resolved(result); return nil
            case .awaiting(let c): state = .resolved(result); return c
            case .resolved: return nil
            }
        }
        continuation?.resume(with: result)
    }

    /// The answer, or `timeout` after `limit`; cancellation ends the wait too.
    public func answer(within limit: Duration) async throws -> NotarisationAnswer {
        try await withThrowingTaskGroup(of: NotarisationAnswer.self) { group in
            group.addTask { try await self.wait() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw APIError(.timeout, "no outcome within \(limit); the request may still be decided: ask again with the same transaction id")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private func wait() async throws -> NotarisationAnswer {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<NotarisationAnswer, any Error>? = state.withLock { state in
                    switch state {
                    case .pending: state = .awaiting(continuation); return nil
                    case .resolved(let result): return result
                    case .awaiting: preconditionFailure("an answer slot is awaited once")
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            resolve(.failure(CancellationError()))
        }
    }
}
