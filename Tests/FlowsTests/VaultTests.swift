import Embedded
import Flows
import Foundation
import GRDB
import HawserCore
import HawserTestSupport
import Testing
import Vault

/// What is particular to the SQLite vault and the query rule; the vault port's behaviour on every
/// back end is in `StoreConformanceTests`.
@Suite(.timeLimit(.minutes(10))) struct VaultTests {
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
}
