import HawserCore

/// Something a flow changes in the node's own database, committed in the same transaction as the
/// journal entry that records it (or the flow's final status), so it happens exactly once whatever
/// crashes. A closed set: every flow store applies each case, and the compiler checks that it does.
public enum LocalEffect: Sendable, Equatable {
    /// A notarised transaction's change to the vault.
    case vault(VaultUpdate)
    /// Releases every soft lock `holder` (a flow) holds; the node commits it with a flow's final status.
    case releaseSoftLocks(holder: String)
    /// A message to another node, written to the outbox.
    case outbox(OutboxMessage)
}

/// What a notarised transaction changes in the vault: the states it consumed and those it
/// produced that this node records. Committed with the flow's journal entry (a local effect).
/// Applying it twice changes nothing the second time.
public struct VaultUpdate: Sendable, Equatable {
    public var txId: SecureHash
    public var consumed: [StateRef]
    public var produced: [VaultState]

    public init(txId: SecureHash, consumed: [StateRef], produced: [VaultState]) {
        self.txId = txId
        self.consumed = consumed
        self.produced = produced
    }
}
