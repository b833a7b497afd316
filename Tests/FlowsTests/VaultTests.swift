import Embedded
import Flows
import Foundation
import GRDB
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

    @Test mutating func pagesFollowTheCursorInEitherOrder() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let refs = (0..<5).map { _ in ids.ref() }
        for (i, ref) in refs.enumerated() {
            try await record(VaultUpdate(txId: ref.txId, consumed: [], produced: [state(ref, owner: "Alice")]), in: database,
                             flow: FlowID("f"), sequence: i)
        }
        // Another owner's state between pages is skipped, not counted.
        let other = ids.ref()
        try await record(VaultUpdate(txId: other.txId, consumed: [], produced: [state(other, owner: "Bob")]), in: database,
                         flow: FlowID("f"), sequence: 5)
        for (order, expected) in [(VaultQuery.Order.ascending, refs), (.descending, refs.reversed())] {
            var seen = [StateRef]()
            var query = VaultQuery(owner: "Alice", order: order, limit: 2)
            var pages = 0
            while true {
                let page = try await database.vault.page(query)
                seen += page.states.map(\.ref)
                pages += 1
                guard let next = page.next else { break }
                query.after = next
            }
            #expect(seen == expected)
            #expect(pages == 3)
        }
        // A full last page says there is no next one.
        #expect(try await database.vault.page(VaultQuery(owner: "Alice", limit: 5)).next == nil)
        await #expect(throws: VaultCursorError("x")) { try await database.vault.page(VaultQuery(after: VaultCursor("x"))) }
        #expect(try await database.vault.states([refs[3], ids.ref(), refs[1]]).map(\.ref) == [refs[3], refs[1]])
    }

    @Test mutating func balancesAreExactBeyondInt64() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let (a, b, c, d) = (ids.ref(), ids.ref(), ids.ref(), ids.ref())
        let states = [
            VaultState(ref: a, type: "token", owner: "Alice", data: [], amount: .max),
            VaultState(ref: b, type: "token", owner: "Alice", data: [], amount: .max),
            VaultState(ref: c, type: "token", owner: "Bob", data: [], amount: 7),
            VaultState(ref: d, type: "token", owner: "Bob", data: [], amount: 5),
        ]
        try await record(VaultUpdate(txId: a.txId, consumed: [], produced: states), in: database, flow: FlowID("f"), sequence: 0)
        try await record(VaultUpdate(txId: ids.hash(), consumed: [d], produced: []), in: database, flow: FlowID("f"), sequence: 1)
        #expect(try await database.vault.balances(type: "token", owner: nil) == [
            VaultBalance(type: "token", owner: "Alice", amount: Int128(Int64.max) * 2, states: 2),
            VaultBalance(type: "token", owner: "Bob", amount: 7, states: 1),
        ])
        #expect(try await database.vault.balances(type: "token", owner: "Bob").map(\.amount) == [7])
        #expect(try await database.vault.balances(type: "bond", owner: nil).isEmpty)
    }

    @Test func aDatabaseFromBeforeAmountsGetsThemFromTheStatesData() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/node.sqlite"
        // The vault table as it was made before states had an amount.
        let old = try DatabaseQueue(path: path)
        try await old.write { db in
            try db.execute(sql: """
                CREATE TABLE vault_states (seq INTEGER PRIMARY KEY AUTOINCREMENT, ref TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
                    owner TEXT NOT NULL, data BLOB NOT NULL, consumed_by TEXT, locked_by TEXT);
                """)
            try db.execute(sql: "INSERT INTO vault_states (ref, type, owner, data) VALUES (?, 'token', 'Alice', ?), (?, 'note', 'Alice', ?)",
                           arguments: ["\(SecureHash.zero.hex):0", Data(#"{"amount":9007199254740993,"owner":"Alice"}"#.utf8),
                                       "\(SecureHash.zero.hex):1", Data("not json".utf8)])
        }
        try old.close()
        let database = try SQLiteNodeDatabase(path: path)
        #expect(try await database.vault.balances(type: "token", owner: nil).map(\.amount) == [9_007_199_254_740_993])
        #expect(try await database.vault.query(VaultQuery(type: "note")).first?.amount == nil)
    }

    @Test mutating func choicesMadeAtOnceNeverCollide() async throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let refs = (0..<20).map { _ in ids.ref() }
        try await record(VaultUpdate(txId: refs[0].txId, consumed: [], produced: refs.map { state($0, owner: "Alice") }),
                         in: database, flow: FlowID("f"), sequence: 0)
        // Twenty holders each choose the first state they are shown, all at once: each gets one.
        let vault = database.vault
        let chosen = try await withThrowingTaskGroup(of: [VaultState]?.self) { group in
            for holder in 0..<20 {
                group.addTask {
                    try await vault.reserve(choosing: VaultQuery(owner: "Alice"), for: "flow-\(holder)", from: 0) { _, _ in .takeAndStop }
                }
            }
            return try await group.reduce(into: [[VaultState]?]()) { $0.append($1) }
        }
        #expect(chosen.allSatisfy { $0?.count == 1 })
        #expect(Set(chosen.compactMap { $0?.first?.ref }) == Set(refs))
        #expect(Set(chosen.compactMap { $0?.first?.lockedBy }).count == 20)
        // A choice that finds too little reserves nothing.
        try await vault.release(holder: "flow-0")
        #expect(try await vault.reserve(choosing: VaultQuery(owner: "Alice"), for: "late", from: 0) { _, _ in .take } == nil)
        let free = try await vault.query(VaultQuery(availableTo: "late"))
        #expect(free.count == 1 && free.allSatisfy { $0.lockedBy == nil })
    }
}
