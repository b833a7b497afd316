import Testing

/// The fault run's checker, on hand-made histories: a clean one passes, and each rule is broken
/// once on its own and named.
@Suite(.timeLimit(.minutes(10))) struct NodeHAHistoryTests {
    /// Two nodes, A then B; three flows completed; every write fenced by its writer's epoch.
    static func clean() -> NodeHAHistory {
        var h = NodeHAHistory()
        h.won = ["A": [1, 3], "B": [2]]
        h.starts = [.init(clientRequestId: "c1", flowId: "f1"), .init(clientRequestId: "c2", flowId: "f2"),
                    .init(clientRequestId: "c3", flowId: "f3")]
        h.flows = [.init(id: "f1", clientRequestId: "c1", status: "completed", txId: "t1", tokens: .issue(owner: "Alice", amount: 10)),
                   .init(id: "f2", clientRequestId: "c2", status: "completed", txId: "t2", tokens: .move(from: "Alice", to: "Bob", amount: 4)),
                   .init(id: "f3", clientRequestId: "c3", status: "completed", txId: "t3", tokens: .issue(owner: "Bob", amount: 1))]
        h.writes = [.init(table: "hawser_fence", key: "node/0", writer: "A", epoch: 1),
                    .init(table: "flows", key: "f1", status: "running", writer: "A", epoch: 1),
                    .init(table: "flows", key: "f1", status: "completed", writer: "A", epoch: 1),
                    .init(table: "flows", key: "f2", status: "running", writer: "A", epoch: 1),
                    .init(table: "hawser_fence", key: "node/0", writer: "B", epoch: 2),
                    .init(table: "flows", key: "f2", status: "completed", writer: "B", epoch: 2),
                    .init(table: "vault_states", key: "t2:0", writer: "B", epoch: 2),
                    .init(table: "hawser_fence", key: "node/0", writer: "A", epoch: 3),
                    .init(table: "flows", key: "f3", status: "completed", writer: "A", epoch: 3)]
        h.balances = ["Alice": 6, "Bob": 5]
        return h
    }

    @Test func aCleanHistoryPasses() {
        #expect(Self.clean().violations() == [])
    }

    /// Breaks the clean history with `change` and expects exactly one violation per `expected` text, in order.
    func expectViolation(_ expected: String..., change: (inout NodeHAHistory) -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        var h = Self.clean()
        change(&h)
        let found = h.violations()
        #expect(found.count == expected.count && zip(found, expected).allSatisfy { $0.contains($1) }, "\(found)", sourceLocation: sourceLocation)
    }

    @Test func anAcknowledgedStartMustBeInTheDatabaseUnderItsRequestId() {
        expectViolation("which the database does not hold") { $0.starts.append(.init(clientRequestId: "c9", flowId: "f9")) }
        expectViolation("whose client request id is c2") { $0.starts[0].flowId = "f2"; $0.starts.remove(at: 1) }
    }

    @Test func aFlowCompletesExactlyOnce() {
        expectViolation("written completed 2 times") { $0.writes.append(.init(table: "flows", key: "f1", status: "completed", writer: "A", epoch: 3)) }
        expectViolation("written completed 0 times") { $0.writes.remove(at: 2) }
    }

    @Test func aRequestIdNamesOneFlow() {
        expectViolation("acknowledged as flows [\"f1\", \"f4\"]", "names 2 flows in the database") {
            $0.starts.append(.init(clientRequestId: "c1", flowId: "f4"))
            $0.flows.append(.init(id: "f4", clientRequestId: "c1", status: "completed", txId: "t4", tokens: .issue(owner: "Carol", amount: 1)))
            $0.writes.append(.init(table: "flows", key: "f4", status: "completed", writer: "A", epoch: 3))
            $0.balances["Carol"] = 1
        }
    }

    @Test func noFlowIsLeftUnfinished() {
        expectViolation("ended running, not completed") { h in
            h.flows[2].status = "running"
            h.balances["Bob"] = 4
        }
        expectViolation("ended failed, not completed: the notary refused") { h in
            h.flows[2].status = "failed"
            h.flows[2].error = "the notary refused"
            h.balances["Bob"] = 4
        }
        expectViolation("ended hospitalised") {
            $0.flows.append(.init(id: "f5", clientRequestId: "c5", status: "hospitalised", txId: nil, tokens: .issue(owner: "Bob", amount: 2)))
        }
    }

    @Test func tokensAreConservedAndTransactionsNotShared() {
        expectViolation("Bob holds 7 tokens, but the completed flows leave 5") { $0.balances["Bob"] = 7 }
        expectViolation("completed with one transaction t1") { $0.flows[2].txId = "t1" }
    }

    @Test func aDeposedMastersWriteIsFound() {
        // A, deposed at epoch 1, writes after B claimed epoch 2: the fence held 2 in its transaction.
        expectViolation("by A was accepted under epoch 2, which A never won") {
            $0.writes.insert(.init(table: "vault_states", key: "t1:0", writer: "A", epoch: 2), at: 6)
        }
        expectViolation("without a fencing epoch") { $0.writes.insert(.init(table: "journal", key: "f1", writer: "A", epoch: nil), at: 1) }
    }

    @Test func neverTwoNodesWithOneEpochAndTheFenceOnlyGrows() {
        expectViolation("epoch 2 was won by both A and B") { $0.won["A"]?.insert(2) }
        expectViolation("the fence went from epoch 3 to 2") { h in
            h.writes.append(.init(table: "hawser_fence", key: "node/0", writer: "B", epoch: 2))
        }
    }

    /// Hot-hot: each partition's fence is a resource of its own, with epochs of its own.
    @Test func eachPartitionsEpochsAreItsOwn() {
        expectViolation("by A was accepted under epoch 1 of node/p2, which A never won") { h in
            h.won["A"]?.insert(.init("node/p1", 1))
            h.writes.append(.init(table: "journal", key: "f3", writer: "A", epoch: 1, resource: "node/p2"))
        }
        expectViolation("epoch 1 of node/p1 was won by both A and B") { h in
            h.won["A"]?.insert(.init("node/p1", 1))
            h.won["B"]?.insert(.init("node/p1", 1))
        }
        expectViolation("the fence went from epoch 4 of node/p1 to 4 of node/p1") { h in
            h.won["B"]?.formUnion([.init("node/p1", 4)])
            h.writes += [.init(table: "hawser_fence", key: "node/p1", writer: "B", epoch: 4, resource: "node/p1"),
                         .init(table: "hawser_fence", key: "node/p1", writer: "B", epoch: 4, resource: "node/p1")]
        }
        // The same epoch number in two partitions is no conflict.
        var h = Self.clean()
        h.won["A"]?.insert(.init("node/p1", 2))
        h.writes.append(.init(table: "hawser_fence", key: "node/p1", writer: "A", epoch: 2, resource: "node/p1"))
        #expect(h.violations() == [])
    }
}
