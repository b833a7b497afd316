import Flows
import HawserCore

extension FlowContext {
    /// The vault as a flow uses it: every read and reservation is journaled, every write is a
    /// local effect committed with its journal entry (see `FlowContext.Durability.local`).
    public var vault: FlowVault { FlowVault(context: self) }
}

public struct FlowVault: Sendable {
    let context: FlowContext

    private func store() throws -> any VaultStore {
        guard let store = context.services.service((any VaultStore).self) else { throw MissingServiceError("vault") }
        return store
    }

    public func query(_ query: VaultQuery) async throws -> [VaultState] {
        let store = try store()
        return try await context.effect("vault.query", String(decoding: try FlowCoding.encode(query), as: UTF8.self),
                                          durability: .read) { _ in
            try await store.query(query)
        }
    }

    /// Reserves `refs` for this flow until it ends; false when one is consumed or held by another flow.
    public func reserve(_ refs: [StateRef]) async throws -> Bool {
        let store = try store()
        let holder = context.flowId.rawValue
        return try await context.effect("vault.reserve", refs.map(\.description).joined(separator: ",")) { _ in
            do {
                try await store.reserve(refs, for: holder)
                return true
            } catch is VaultError {
                return false
            }
        }
    }

    /// Picks states and reserves them: `select` chooses from the unconsumed states of `query` that
    /// no other flow holds (nil: not enough), and the choice is reserved. A choice lost to another
    /// flow between the query and the reservation is made again from a fresh query (which no
    /// longer shows the lost states). Returns nil when `select` finds too little.
    ///
    /// The losses are journaled, so a replay repeats them exactly; giving up must therefore be a
    /// `FlowFailure`, never a transient error, or every retry would replay into the same error.
    public func selectAndReserve(_ query: VaultQuery, attempts: Int = 100,
                                 select: ([VaultState]) -> [VaultState]?) async throws -> [VaultState]? {
        var available = query
        available.consumption = .unconsumed
        available.availableTo = context.flowId.rawValue
        for _ in 0..<attempts {
            guard let chosen = select(try await self.query(available)) else { return nil }
            if try await reserve(chosen.map(\.ref)) { return chosen }
        }
        throw FlowFailure("the states chosen were reserved by other flows \(attempts) times in a row")
    }

    /// Records a notarised transaction's effect on the vault, exactly once.
    public func record(_ update: VaultUpdate) async throws {
        try await context.record(EffectKind.record, update.txId.hex) { _ in [update] }
    }
}
