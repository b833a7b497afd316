import Flows
import HawserCore

/// Which states a query selects, in which order, one page at a time.
public struct VaultQuery: Sendable, Equatable, Codable {
    public enum Consumption: String, Sendable, Codable, CaseIterable { case unconsumed, consumed, all }
    /// Recording order, oldest first (`ascending`) or newest first.
    public enum Order: String, Sendable, Codable, CaseIterable { case ascending = "asc", descending = "desc" }

    public var type: String?
    public var owner: String?
    public var consumption: Consumption
    /// Leave out states soft-locked by anyone other than this lock holder (a flow id); nil keeps them.
    public var availableTo: String?
    public var order: Order
    /// Start after this cursor (the `next` of the previous page); nil starts at the beginning.
    public var after: VaultCursor?
    /// The page size.
    public var limit: Int

    public init(type: String? = nil, owner: String? = nil, consumption: Consumption = .unconsumed,
                availableTo: String? = nil, order: Order = .ascending, after: VaultCursor? = nil, limit: Int = 1_000) {
        self.type = type
        self.owner = owner
        self.consumption = consumption
        self.availableTo = availableTo
        self.order = order
        self.after = after
        self.limit = limit
    }

    /// The rule every vault store applies (the SQLite one in SQL); paging aside.
    public func matches(_ state: VaultState) -> Bool {
        if let type, state.type != type { return false }
        if let owner, state.owner != owner { return false }
        switch consumption {
        case .unconsumed: if state.isConsumed { return false }
        case .consumed: if !state.isConsumed { return false }
        case .all: break
        }
        if let availableTo, let holder = state.lockedBy, holder != availableTo { return false }
        return true
    }
}

/// Where a page of a query ended: opaque to callers, meaningful only to the store that made it,
/// and stable while states are recorded (a state recorded later sorts after every cursor).
public struct VaultCursor: Sendable, Hashable, Codable {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// The recording sequence the stores write as a cursor (1 to 18 digits), nil for anything else.
    public var sequence: Int64? { Int(digits: rawValue).map(Int64.init) }
}

/// One page of a query's states, and the cursor of the next page (nil: this was the last).
public struct VaultPage: Sendable, Equatable {
    public var states: [VaultState]
    public var next: VaultCursor?

    public init(states: [VaultState], next: VaultCursor?) {
        self.states = states
        self.next = next
    }
}

/// An owner's unconsumed amount of one type of fungible state. The sum is exact: an Int128 holds
/// the amounts of more states than any vault will.
public struct VaultBalance: Sendable, Equatable {
    public var type: String
    public var owner: String
    public var amount: Int128
    /// How many unconsumed states make it up.
    public var states: Int

    public init(type: String, owner: String, amount: Int128, states: Int) {
        self.type = type
        self.owner = owner
        self.amount = amount
        self.states = states
    }
}
