import Flows
import HawserCore

/// Why a state could not be reserved.
public struct VaultError: Error, Sendable, Equatable, CustomStringConvertible {
    public var ref: StateRef
    public var reason: String
    public init(ref: StateRef, reason: String) {
        self.ref = ref
        self.reason = reason
    }
    public var description: String { "state \(ref) cannot be reserved: \(reason)" }
}

/// A query's cursor that this vault did not make.
public struct VaultCursorError: Error, Sendable, Equatable, CustomStringConvertible {
    public var cursor: String
    public init(_ cursor: String) { self.cursor = cursor }
    public var description: String { "`\(cursor.prefix(100))` is not a cursor of this vault; pass the `next` of a page" }
}

/// What a chooser makes of a state it is shown (`VaultStore.reserve(choosing:)`).
public enum VaultPick: Sendable {
    /// Leave it.
    case skip
    /// Choose it and go on.
    case take
    /// Choose it: the states chosen are enough.
    case takeAndStop
}

/// The vault port: queries, balances and soft locks. Writes arrive as `VaultUpdate` local effects.
public protocol VaultStore: Sendable {
    /// One page of the states `query` selects, in its order; throws `VaultCursorError` for a
    /// cursor the store did not make.
    func page(_ query: VaultQuery) async throws -> VaultPage
    /// The states with these refs, in the order asked; refs the vault does not hold are left out.
    func states(_ refs: [StateRef]) async throws -> [VaultState]
    /// Each owner's unconsumed amount of `type` (states with an amount), by owner name.
    func balances(type: String, owner: String?) async throws -> [VaultBalance]
    /// Reserves every ref for `holder`, or none: throws `VaultError` if one is unknown, consumed
    /// or locked by another holder. Reserving again for the same holder succeeds.
    func reserve(_ refs: [StateRef], for holder: String) async throws
    /// Chooses states and reserves them for `holder` in one step, so that no other holder takes
    /// a state between the choice and the reservation: `pick` is shown the unconsumed states of
    /// `query` that no other holder has reserved, in the query's order, with a tally that starts
    /// at `start`, until it says the states taken are enough. Returns them, reserved, or nil (and
    /// reserves nothing) if every state was shown first.
    func reserve<Tally: Sendable>(choosing query: VaultQuery, for holder: String, from start: Tally,
                                  pick: @escaping @Sendable (inout Tally, VaultState) throws -> VaultPick) async throws -> [VaultState]?
    func release(holder: String) async throws
}

extension VaultStore {
    /// The first page of `query`.
    public func query(_ query: VaultQuery) async throws -> [VaultState] { try await page(query).states }
}
