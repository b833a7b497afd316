import Flows
import Foundation
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

    /// One page of `query`. The page is journaled whole, states and all: to choose states to
    /// spend, `selectAndReserve` journals only the refs it chose.
    public func query(_ query: VaultQuery) async throws -> VaultPage {
        let store = try store()
        let page = try await context.effect("vault.query", String(decoding: try FlowCoding.encode(query), as: UTF8.self),
                                            durability: .read) { _ in
            JournaledPage(try await store.page(query))
        }
        return page.page
    }

    /// The states with these refs that this node's vault holds (consumed or not), in the order
    /// asked; refs it does not hold are left out. Journaled whole.
    public func states(_ refs: [StateRef]) async throws -> [VaultState] {
        let store = try store()
        return try await context.effect("vault.states", refs.map(\.description).joined(separator: ","), durability: .read) { _ in
            try await store.states(refs)
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

    /// Chooses states and reserves them for this flow until it ends: `pick` is shown the
    /// unconsumed states of `query` that no other flow holds, in the query's order, with a tally
    /// that starts at `start`, until it says the states taken are enough; they are reserved in
    /// the same step (`VaultStore.reserve(choosing:)`), so no other flow takes one in between.
    /// Returns nil, reserving nothing, when every state was shown and `pick` never said enough.
    ///
    /// Only the refs chosen are journaled (36 bytes each), whatever the number of states read;
    /// a replay reads the chosen states back from the vault (a state's content never changes).
    /// The reservation is seen by other flows, so the flow's pending entries are written before
    /// it; its own entry waits for the flow's next write (a crash before then makes the choice
    /// again, and the locks of the first choice are released when the flow ends).
    public func selectAndReserve<Tally: Sendable>(_ query: VaultQuery, from start: Tally,
                                                  pick: @escaping @Sendable (inout Tally, VaultState) throws -> VaultPick)
        async throws -> [VaultState]? {
        let store = try store()
        let holder = context.flowId.rawValue
        var chosen: [VaultState]?
        let descriptor = "\(query.type ?? "*")/\(query.owner ?? "*")/\(query.order.rawValue)"
        let refs = try await context.effect("vault.select", descriptor, durability: .outside(resultDeferred: true)) { _ -> Data? in
            chosen = try await store.reserve(choosing: query, for: holder, from: start, pick: pick)
            return chosen.map { Self.encode($0.map(\.ref)) }
        }
        if let chosen { return chosen }
        guard let refs else { return nil }
        // Replaying: the states as they were when chosen (unconsumed, reserved by this flow).
        let wanted = try Self.decode(refs)
        let states = try await store.states(wanted)
        guard states.map(\.ref) == wanted else {
            throw FlowFailure("the vault no longer holds every state this flow chose")
        }
        return states.map { state in
            var state = state
            state.consumedBy = nil
            state.lockedBy = holder
            return state
        }
    }

    /// Refs as 36 bytes each (transaction id, big-endian index), journaled as base64.
    static func encode(_ refs: [StateRef]) -> Data {
        var writer = CanonicalWriter(capacity: refs.count * 36)
        for ref in refs { writer.stateRef(ref) }
        return Data(writer.bytes)
    }

    static func decode(_ data: Data) throws -> [StateRef] {
        var reader = CanonicalReader([UInt8](data))
        var refs = [StateRef]()
        while !reader.isAtEnd { refs.append(try reader.stateRef()) }
        return refs
    }

    /// Records a notarised transaction's effect on the vault, exactly once.
    public func record(_ update: VaultUpdate) async throws {
        try await context.record(EffectKind.record, update.txId.hex) { _ in [.vault(update)] }
    }
}

/// A page in the journal.
private struct JournaledPage: Codable, Sendable {
    var states: [VaultState]
    var next: VaultCursor?
    init(_ page: VaultPage) {
        states = page.states
        next = page.next
    }
    var page: VaultPage { VaultPage(states: states, next: next) }
}
