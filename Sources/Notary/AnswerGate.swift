import HawserCore
import Synchronization

/// Outcomes a replica has decided but may not sign yet: each waits until the quorum has
/// confirmed the log position that decided it (`Confirmations`), then the released ones are signed
/// together (one Merkle tree, one signature) and handed to their waiters. Nothing is signed before
/// it is confirmed, so a replica that diverges has signed nothing of the divergent part.
public final class AnswerGate: Sendable {
    private struct Held {
        var position: UInt64
        var txIds: [SecureHash]
        var outcomes: [NotarisationOutcome]
    }
    private struct State {
        var held: [Held] = []
        var released: UInt64 = 0
    }
    private let state = Mutex(State())
    private let signer: SigningKey
    private let waiters: AnswerWaiters

    public init(signer: SigningKey, waiters: AnswerWaiters) {
        self.signer = signer
        self.waiters = waiters
    }

    /// Holds the outcomes decided by the entries up to `position` (only those someone waits for).
    func hold(position: UInt64, txIds: [SecureHash], outcomes: [NotarisationOutcome]) {
        var kept = Held(position: position, txIds: [], outcomes: [])
        for (txId, outcome) in zip(txIds, outcomes) where waiters.isWaiting(for: txId) {
            kept.txIds.append(txId)
            kept.outcomes.append(outcome)
        }
        guard !kept.txIds.isEmpty else { return }
        let releaseNow = state.withLock { state -> Bool in
            if position <= state.released { return true }
            state.held.append(kept)
            return false
        }
        if releaseNow { sign([kept]) }
    }

    /// Signs and hands out everything held up to `position` (confirmed).
    func release(through position: UInt64) {
        let due = state.withLock { state -> [Held] in
            state.released = max(state.released, position)
            let count = state.held.prefix { $0.position <= position }.count
            defer { state.held.removeFirst(count) }
            return Array(state.held.prefix(count))
        }
        if !due.isEmpty { sign(due) }
    }

    /// Outcomes held, for metrics and health.
    var heldCount: Int { state.withLock { $0.held.reduce(0) { $0 + $1.txIds.count } } }

    private func sign(_ batches: [Held]) {
        let txIds = batches.flatMap(\.txIds), outcomes = batches.flatMap(\.outcomes)
        let leaves = zip(txIds, outcomes).map { NotarisationAnswer.leafHash(txId: $0, outcome: $1) }
        let tree = MerkleTree(leaves: leaves)
        let signature = signer.sign(NotarisationAnswer.batchSigningPayload(root: tree.root))
        for (index, txId) in txIds.enumerated() {
            waiters.fulfil(NotarisationAnswer(txId: txId, outcome: outcomes[index], proof: tree.proof(forLeaf: index),
                                              signature: signature))
        }
    }
}
