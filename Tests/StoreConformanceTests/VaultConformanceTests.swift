import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Testing
import Vault

/// The vault port on every back end: queries, paging, balances, soft locks and choices.
@Suite(PostgresTrait(ifAvailable: true), .timeLimit(.minutes(2)))
struct VaultConformanceTests {
    func state(_ ref: StateRef, type: String = "token", owner: String) -> VaultState {
        VaultState(ref: ref, type: type, owner: owner, data: Array("{}".utf8))
    }

    /// Applies `update` the way a flow does: as a local effect with a journal entry.
    func record(_ update: VaultUpdate, in stores: NodeStores, flow: FlowID, sequence: Int) async throws {
        let entry = JournalEntry(sequence: sequence, kind: EffectKind.record, descriptor: update.txId.hex, result: [])
        _ = try await stores.flows.commit([.journal(flow, entry, [.vault(update)])])
    }

    @Test(arguments: Backend.available) func queriesByTypeOwnerAndConsumption(_ backend: Backend) async throws {
        var ids = Ids(seed: 5)
        try await StoreDatabase.with(backend) { database in
            let stores = try await database.node()
            let vault = stores.vault
            let (a, b, c) = (ids.ref(), ids.ref(), ids.ref())
            try await record(VaultUpdate(txId: a.txId, consumed: [], produced: [state(a, owner: "Alice")]), in: stores, flow: FlowID("f"), sequence: 0)
            try await record(VaultUpdate(txId: b.txId, consumed: [], produced: [state(b, owner: "Bob")]), in: stores, flow: FlowID("f"), sequence: 1)
            try await record(VaultUpdate(txId: c.txId, consumed: [], produced: [state(c, type: "bond", owner: "Alice")]),
                             in: stores, flow: FlowID("f"), sequence: 2)
            let spend = ids.hash()
            try await record(VaultUpdate(txId: spend, consumed: [a], produced: []), in: stores, flow: FlowID("f"), sequence: 3)

            #expect(try await vault.query(VaultQuery(type: "token")).map(\.ref) == [b])
            #expect(try await vault.query(VaultQuery(owner: "Alice")).map(\.ref) == [c])
            #expect(try await vault.query(VaultQuery(consumption: .consumed)).map(\.ref) == [a])
            #expect(try await vault.query(VaultQuery(consumption: .consumed)).first?.consumedBy == spend)
            #expect(try await vault.query(VaultQuery(consumption: .all)).count == 3)
            #expect(try await vault.query(VaultQuery(consumption: .all, limit: 2)).count == 2)
        }
    }

    @Test(arguments: Backend.available) func anUpdateAppliedTwiceChangesNothingMore(_ backend: Backend) async throws {
        var ids = Ids(seed: 5)
        try await StoreDatabase.with(backend) { database in
            let stores = try await database.node()
            let a = ids.ref()
            let produce = VaultUpdate(txId: a.txId, consumed: [], produced: [state(a, owner: "Alice")])
            try await record(produce, in: stores, flow: FlowID("f"), sequence: 0)
            try await record(produce, in: stores, flow: FlowID("g"), sequence: 0)
            let first = ids.hash(), second = ids.hash()
            try await record(VaultUpdate(txId: first, consumed: [a], produced: []), in: stores, flow: FlowID("f"), sequence: 1)
            try await record(VaultUpdate(txId: second, consumed: [a], produced: []), in: stores, flow: FlowID("f"), sequence: 2)
            let all = try await stores.vault.query(VaultQuery(consumption: .all))
            #expect(all.count == 1)
            #expect(all.first?.consumedBy == first)
        }
    }

    @Test(arguments: Backend.available) func softLocksReserveForOneFlowUntilReleased(_ backend: Backend) async throws {
        var ids = Ids(seed: 5)
        try await StoreDatabase.with(backend) { database in
            let stores = try await database.node()
            let vault = stores.vault
            let (a, b) = (ids.ref(), ids.ref())
            try await record(VaultUpdate(txId: a.txId, consumed: [], produced: [state(a, owner: "Alice"), state(b, owner: "Alice")]),
                             in: stores, flow: FlowID("f"), sequence: 0)
            try await vault.reserve([a], for: "flow-1")
            try await vault.reserve([a], for: "flow-1")  // again for the same holder: fine
            await #expect(throws: VaultError(ref: a, reason: "reserved by flow flow-1")) { try await vault.reserve([b, a], for: "flow-2") }
            // All or nothing: b was not reserved by the refused call.
            #expect(try await vault.query(VaultQuery(availableTo: "flow-2")).map(\.ref) == [b])
            #expect(try await vault.query(VaultQuery(availableTo: "flow-1")).map(\.ref) == [a, b])
            // Releasing with the flow's final status (a local effect) frees the state.
            _ = try await stores.flows.commit([.state(FlowID("flow-1"), FlowState(status: .completed, attempts: 0,
                                                                                    updatedAt: Instant(microsecondsSinceEpoch: 0)),
                                                      [.releaseSoftLocks(holder: "flow-1")])])
            try await vault.reserve([a, b], for: "flow-2")
            #expect(try await vault.query(VaultQuery()).allSatisfy { $0.lockedBy == "flow-2" })
            let unknown = ids.ref()
            await #expect(throws: VaultError(ref: unknown, reason: "this vault does not hold it")) { try await vault.reserve([unknown], for: "flow-2") }
            try await record(VaultUpdate(txId: ids.hash(), consumed: [a], produced: []), in: stores, flow: FlowID("flow-2"), sequence: 0)
            await #expect(throws: VaultError.self) { try await vault.reserve([a], for: "flow-3") }
        }
    }

    @Test(arguments: Backend.available) func pagesFollowTheCursorInEitherOrder(_ backend: Backend) async throws {
        var ids = Ids(seed: 5)
        try await StoreDatabase.with(backend) { database in
            let stores = try await database.node()
            let refs = (0..<5).map { _ in ids.ref() }
            for (i, ref) in refs.enumerated() {
                try await record(VaultUpdate(txId: ref.txId, consumed: [], produced: [state(ref, owner: "Alice")]), in: stores,
                                 flow: FlowID("f"), sequence: i)
            }
            // Another owner's state between pages is skipped, not counted.
            let other = ids.ref()
            try await record(VaultUpdate(txId: other.txId, consumed: [], produced: [state(other, owner: "Bob")]), in: stores,
                             flow: FlowID("f"), sequence: 5)
            for (order, expected) in [(VaultQuery.Order.ascending, refs), (.descending, refs.reversed())] {
                var seen = [StateRef]()
                var query = VaultQuery(owner: "Alice", order: order, limit: 2)
                var pages = 0
                while true {
                    let page = try await stores.vault.page(query)
                    seen += page.states.map(\.ref)
                    pages += 1
                    guard let next = page.next else { break }
                    query.after = next
                }
                #expect(seen == expected)
                #expect(pages == 3)
            }
            // A full last page says there is no next one.
            #expect(try await stores.vault.page(VaultQuery(owner: "Alice", limit: 5)).next == nil)
            for bad in ["x", "+3", "-1", "1234567890123456789"] {
                await #expect(throws: VaultCursorError(bad)) { try await stores.vault.page(VaultQuery(after: VaultCursor(bad))) }
            }
            #expect(try await stores.vault.states([refs[3], ids.ref(), refs[1]]).map(\.ref) == [refs[3], refs[1]])
        }
    }

    @Test(arguments: Backend.available) func balancesAreExactBeyondInt64(_ backend: Backend) async throws {
        var ids = Ids(seed: 5)
        try await StoreDatabase.with(backend) { database in
            let stores = try await database.node()
            let (a, b, c, d) = (ids.ref(), ids.ref(), ids.ref(), ids.ref())
            let states = [
                VaultState(ref: a, type: "token", owner: "Alice", data: [], amount: .max),
                VaultState(ref: b, type: "token", owner: "Alice", data: [], amount: .max),
                VaultState(ref: c, type: "token", owner: "Bob", data: [], amount: 7),
                VaultState(ref: d, type: "token", owner: "Bob", data: [], amount: 5),
                VaultState(ref: ids.ref(), type: "token", owner: "Bob", data: []),
            ]
            try await record(VaultUpdate(txId: a.txId, consumed: [], produced: states), in: stores, flow: FlowID("f"), sequence: 0)
            try await record(VaultUpdate(txId: ids.hash(), consumed: [d], produced: []), in: stores, flow: FlowID("f"), sequence: 1)
            #expect(try await stores.vault.balances(type: "token", owner: nil) == [
                VaultBalance(type: "token", owner: "Alice", amount: Int128(Int64.max) * 2, states: 2),
                VaultBalance(type: "token", owner: "Bob", amount: 7, states: 1),
            ])
            #expect(try await stores.vault.balances(type: "token", owner: "Bob").map(\.amount) == [7])
            #expect(try await stores.vault.balances(type: "bond", owner: nil).isEmpty)
            // A state without an amount keeps it absent, not zero.
            #expect(try await stores.vault.query(VaultQuery(owner: "Bob")).map(\.amount) == [7, nil])
        }
    }

    @Test(arguments: Backend.available) func choicesMadeAtOnceNeverCollide(_ backend: Backend) async throws {
        var ids = Ids(seed: 5)
        try await StoreDatabase.with(backend) { database in
            let stores = try await database.node()
            let refs = (0..<20).map { _ in ids.ref() }
            try await record(VaultUpdate(txId: refs[0].txId, consumed: [], produced: refs.map { state($0, owner: "Alice") }),
                             in: stores, flow: FlowID("f"), sequence: 0)
            // Twenty holders each choose the first state they are shown, all at once: each gets one.
            let vault = stores.vault
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

    @Test(arguments: Backend.available) func aChoiceTalliesAcrossPagesAndStopsWhenEnough(_ backend: Backend) async throws {
        var ids = Ids(seed: 6)
        try await StoreDatabase.with(backend) { database in
            let stores = try await database.node()
            // 40 states of 1: more than the first page of a choice (16) holds.
            let refs = (0..<40).map { _ in ids.ref() }
            try await record(VaultUpdate(txId: refs[0].txId, consumed: [], produced: refs.map {
                VaultState(ref: $0, type: "token", owner: "Alice", data: [], amount: 1)
            }), in: stores, flow: FlowID("f"), sequence: 0)
            let taken = try await stores.vault.reserve(choosing: VaultQuery(owner: "Alice"), for: "pay", from: Int64(0)) { total, state in
                total += state.amount ?? 0
                return total >= 30 ? .takeAndStop : .take
            }
            #expect(taken?.map(\.ref) == Array(refs.prefix(30)))
            #expect(try await stores.vault.query(VaultQuery(availableTo: "other", limit: 100)).map(\.ref) == Array(refs.suffix(10)))
        }
    }
}
