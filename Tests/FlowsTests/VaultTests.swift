import Embedded
import Flows
import HawserCore
import HawserTestSupport
import Testing
import Vault

@Suite struct VaultTests {
    var ids = Ids(seed: 5)

    func state(_ ref: StateRef, type: String = "token", owner: String) -> VaultState {
        VaultState(ref: ref, type: type, owner: owner, data: Array("{}".utf8))
    }

    /// Applies `update` the way a flow does: as a local effect with a journal entry.
    func record(_ update: VaultUpdate, in database: SQLiteNodeDatabase, flow: FlowID, sequence: Int) async throws {
        let entry = JournalEntry(sequence: sequence, kind: EffectKind.record, descriptor: update.txId.hex, result: [])
        _ = try await database.flows.commit([.journal(flow, entry, [update])])
    }

    @Test mutating func queriesByTypeOwnerAndConsumption() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let vault = database.vault
        let (a, b, c) = (ids.ref(), ids.ref(), ids.ref())
        try await record(VaultUpdate(txId: a.txId, consumed: [], produced: [state(a, owner: "Alice")]), in: database,
                         flow: FlowID("f"), sequence: 0)
        try await record(VaultUpdate(txId: b.txId, consumed: [], produced: [state(b, owner: "Bob")]), in: database,
                         flow: FlowID("f"), sequence: 1)
        try await record(VaultUpdate(txId: c.txId, consumed: [], produced: [state(c, type: "bond", owner: "Alice")]),
                         in: database, flow: FlowID("f"), sequence: 2)
        let spend = ids.hash()
        try await record(VaultUpdate(txId: spend, consumed: [a], produced: []), in: database, flow: FlowID("f"), sequence: 3)

        #expect(try await vault.query(VaultQuery(type: "token")).map(\.ref) == [b])
        #expect(try await vault.query(VaultQuery(owner: "Alice")).map(\.ref) == [c])
        #expect(try await vault.query(VaultQuery(consumption: .consumed)).map(\.ref) == [a])
        #expect(try await vault.query(VaultQuery(consumption: .consumed)).first?.consumedBy == spend)
        #expect(try await vault.query(VaultQuery(consumption: .all)).count == 3)
        #expect(try await vault.query(VaultQuery(consumption: .all, limit: 2)).count == 2)
    }

    @Test mutating func anUpdateAppliedTwiceChangesNothingMore() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let a = ids.ref()
        let produce = VaultUpdate(txId: a.txId, consumed: [], produced: [state(a, owner: "Alice")])
        try await record(produce, in: database, flow: FlowID("f"), sequence: 0)
        try await record(produce, in: database, flow: FlowID("g"), sequence: 0)
        let first = ids.hash(), second = ids.hash()
        try await record(VaultUpdate(txId: first, consumed: [a], produced: []), in: database, flow: FlowID("f"), sequence: 1)
        try await record(VaultUpdate(txId: second, consumed: [a], produced: []), in: database, flow: FlowID("f"), sequence: 2)
        let all = try await database.vault.query(VaultQuery(consumption: .all))
        #expect(all.count == 1)
        #expect(all.first?.consumedBy == first)
    }

    @Test mutating func softLocksReserveForOneFlowUntilReleased() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let vault = database.vault
        let (a, b) = (ids.ref(), ids.ref())
        try await record(VaultUpdate(txId: a.txId, consumed: [], produced: [state(a, owner: "Alice"), state(b, owner: "Alice")]),
                         in: database, flow: FlowID("f"), sequence: 0)
        try await vault.reserve([a], for: "flow-1")
        try await vault.reserve([a], for: "flow-1")  // again for the same holder: fine
        await #expect(throws: VaultError.self) { try await vault.reserve([b, a], for: "flow-2") }
        // All or nothing: b was not reserved by the refused call.
        #expect(try await vault.query(VaultQuery(availableTo: "flow-2")).map(\.ref) == [b])
        #expect(try await vault.query(VaultQuery(availableTo: "flow-1")).map(\.ref) == [a, b])
        // Releasing with the flow's final status (a local effect) frees the state.
        _ = try await database.flows.commit([.state(FlowID("flow-1"), FlowState(status: .completed, attempts: 0,
                                                                                  updatedAt: Instant(microsecondsSinceEpoch: 0)),
                                                    [ReleaseSoftLocks(holder: "flow-1")])])
        try await vault.reserve([a, b], for: "flow-2")
        #expect(try await vault.query(VaultQuery()).allSatisfy { $0.lockedBy == "flow-2" })
        await #expect(throws: VaultError.self) { try await vault.reserve([ids.ref()], for: "flow-2") }
    }

    @Test func queryRuleMatchesTheStore() {
        let consumed = VaultState(ref: StateRef(txId: .zero, index: 0), type: "token", owner: "Alice", data: [],
                                  consumedBy: .zero, lockedBy: nil)
        let locked = VaultState(ref: StateRef(txId: .zero, index: 1), type: "token", owner: "Alice", data: [],
                                consumedBy: nil, lockedBy: "f")
        #expect(!VaultQuery().matches(consumed))
        #expect(VaultQuery(consumption: .consumed).matches(consumed))
        #expect(VaultQuery().matches(locked))
        #expect(!VaultQuery(availableTo: "g").matches(locked))
        #expect(VaultQuery(availableTo: "f").matches(locked))
        #expect(!VaultQuery(owner: "Bob").matches(locked))
    }
}
