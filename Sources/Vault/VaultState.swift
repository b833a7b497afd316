import Flows
import HawserCore

/// One output of a notarised transaction that this node records: who owns it, what kind of
/// state it is, the application's payload, and whether it has been consumed or soft-locked.
public struct VaultState: Sendable, Equatable, Codable {
    public var ref: StateRef
    /// The application's name for the kind of state (e.g. "token").
    public var type: String
    /// The owning party's name.
    public var owner: String
    /// The application's payload (JSON).
    public var data: [UInt8]
    /// The transaction that consumed the state, once one has.
    public var consumedBy: SecureHash?
    /// The flow that has reserved the state, if any.
    public var lockedBy: String?

    public init(ref: StateRef, type: String, owner: String, data: [UInt8], consumedBy: SecureHash? = nil, lockedBy: String? = nil) {
        self.ref = ref
        self.type = type
        self.owner = owner
        self.data = data
        self.consumedBy = consumedBy
        self.lockedBy = lockedBy
    }

    public var isConsumed: Bool { consumedBy != nil }

    private enum CodingKeys: String, CodingKey { case ref, type, owner, data, consumedBy, lockedBy }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let refText = try c.decode(String.self, forKey: .ref)
        guard let ref = StateRef(refText) else {
            throw DecodingError.dataCorruptedError(forKey: .ref, in: c, debugDescription: "`\(refText)` is not a state ref")
        }
        self.ref = ref
        type = try c.decode(String.self, forKey: .type)
        owner = try c.decode(String.self, forKey: .owner)
        data = try c.decode([UInt8].self, forKey: .data)
        if let consumer = try c.decodeIfPresent(String.self, forKey: .consumedBy) {
            guard let hash = SecureHash(hex: consumer) else {
                throw DecodingError.dataCorruptedError(forKey: .consumedBy, in: c, debugDescription: "not a transaction id")
            }
            consumedBy = hash
        }
        lockedBy = try c.decodeIfPresent(String.self, forKey: .lockedBy)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ref.description, forKey: .ref)
        try c.encode(type, forKey: .type)
        try c.encode(owner, forKey: .owner)
        try c.encode(data, forKey: .data)
        try c.encodeIfPresent(consumedBy?.hex, forKey: .consumedBy)
        try c.encodeIfPresent(lockedBy, forKey: .lockedBy)
    }
}

/// Which states a query selects.
public struct VaultQuery: Sendable, Equatable, Codable {
    public enum Consumption: String, Sendable, Codable, CaseIterable { case unconsumed, consumed, all }

    public var type: String?
    public var owner: String?
    public var consumption: Consumption
    /// Leave out states soft-locked by anyone other than this lock holder (a flow id); nil keeps them.
    public var availableTo: String?
    public var limit: Int

    public init(type: String? = nil, owner: String? = nil, consumption: Consumption = .unconsumed,
                availableTo: String? = nil, limit: Int = 1_000) {
        self.type = type
        self.owner = owner
        self.consumption = consumption
        self.availableTo = availableTo
        self.limit = limit
    }

    /// The rule every vault store applies (the SQLite one in SQL).
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

/// What a notarised transaction changes in the vault: the states it consumed and those it
/// produced that this node records. Committed with the flow's journal entry (a local effect).
/// Applying it twice changes nothing the second time.
public struct VaultUpdate: LocalEffect, Equatable {
    public var txId: SecureHash
    public var consumed: [StateRef]
    public var produced: [VaultState]

    public init(txId: SecureHash, consumed: [StateRef], produced: [VaultState]) {
        self.txId = txId
        self.consumed = consumed
        self.produced = produced
    }
}

/// Releases every soft lock a flow holds; the node commits it with the flow's final status.
public struct ReleaseSoftLocks: LocalEffect, Equatable {
    public var holder: String
    public init(holder: String) { self.holder = holder }
}

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

/// The vault port: queries and soft locks. Writes arrive as `VaultUpdate` local effects.
public protocol VaultStore: Sendable {
    func query(_ query: VaultQuery) async throws -> [VaultState]
    /// Reserves every ref for `holder`, or none: throws `VaultError` if one is unknown, consumed
    /// or locked by another holder. Reserving again for the same holder succeeds.
    func reserve(_ refs: [StateRef], for holder: String) async throws
    func release(holder: String) async throws
}
