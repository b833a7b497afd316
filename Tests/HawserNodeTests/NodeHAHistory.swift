/// What a fault run of a hot-warm node pair did, as its clients, its nodes' logs and its shared
/// database saw it, and the rules of issue 15 it must keep. Sans-I/O: the test collects the
/// history; `violations` judges it, so each rule is unit-tested with hand-made histories.
///
/// The rules:
/// - every acknowledged start names a flow in the database with its client request id, which
///   completed, exactly once (one write of the `completed` status);
/// - no client request id names two flows, and no flow is left unfinished at the end;
/// - no two completed flows share a transaction, and tokens are conserved: each owner's
///   unconsumed tokens are what the completed flows issued and moved;
/// - every write to the node database was made by a node that won the epoch the database's fence
///   held inside that write's transaction (a deposed master's write shows as a write under an
///   epoch its writer never won), and every write was fenced;
/// - no epoch was won by two nodes, and the fence's epochs only grew: at most one node holds a
///   valid epoch at any time (of each fenced resource: in hot-hot, of each partition).
struct NodeHAHistory: Sendable {
    /// A start the client was told of: the flow id the node answered for a client request id.
    struct Start: Sendable, Equatable {
        var clientRequestId: String
        var flowId: String
    }

    /// A flow as the database holds it at the end, with its token arguments.
    struct Flow: Sendable, Equatable {
        var id: String
        var clientRequestId: String?
        var status: String
        /// The transaction a completed flow returned.
        var txId: String?
        var tokens: TokenEffect
        /// Why a flow that did not complete ended so (its error column).
        var error: String? = nil
    }

    /// What a token flow does when it completes.
    enum TokenEffect: Sendable, Equatable {
        case issue(owner: String, amount: Int64)
        case move(from: String, to: String, amount: Int64)
    }

    /// One row written, in commit order: its table and key, the flow status it wrote (flows
    /// only), the node that wrote it, and the epoch of the fence that guards it (`resource`: the
    /// shard's, or in hot-hot the flow's partition's) inside its transaction (nil: none).
    struct Write: Sendable, Equatable {
        var table: String
        var key: String
        var status: String?
        var writer: String
        var epoch: UInt64?
        var resource = "node/0"
    }

    /// An epoch of one fenced resource. An integer literal is an epoch of `node/0`, the one shard
    /// of a hot-warm node.
    struct Term: Sendable, Hashable, Comparable, ExpressibleByIntegerLiteral, CustomStringConvertible {
        var resource: String
        var epoch: UInt64
        init(_ resource: String, _ epoch: UInt64) { (self.resource, self.epoch) = (resource, epoch) }
        init(integerLiteral epoch: UInt64) { self.init("node/0", epoch) }
        var description: String { resource == "node/0" ? "\(epoch)" : "\(epoch) of \(resource)" }
        static func < (a: Term, b: Term) -> Bool { (a.resource, a.epoch) < (b.resource, b.epoch) }
    }

    var starts: [Start] = []
    var flows: [Flow] = []
    /// Audited writes in commit order, the fence's own (`hawser_fence`, epoch = the new value) included.
    var writes: [Write] = []
    /// The epochs each node logged winning.
    var won: [String: Set<Term>] = [:]
    /// Hot-hot RPC workers: they write flows' starts (status running) for the partitions' owners,
    /// unfenced (docs/node.md "Roles"), and nothing else of the audited tables.
    var rpcWorkers: Set<String> = []
    /// Each owner's unconsumed tokens at the end.
    var balances: [String: Int64] = [:]

    func violations() -> [String] {
        var out = [String]()
        let byId = Dictionary(flows.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let completions = Dictionary(grouping: writes.filter { $0.table == "flows" && $0.status == "completed" }, by: \.key)

        for start in starts {
            guard let flow = byId[start.flowId] else {
                out.append("acknowledged start \(start.clientRequestId) names flow \(start.flowId), which the database does not hold")
                continue
            }
            if flow.clientRequestId != start.clientRequestId {
                out.append("acknowledged start \(start.clientRequestId) names flow \(start.flowId), whose client request id is \(flow.clientRequestId ?? "none")")
            }
            if flow.status == "completed", completions[flow.id]?.count != 1 {
                out.append("flow \(flow.id) (\(start.clientRequestId)) was written completed \(completions[flow.id]?.count ?? 0) times")
            }
        }
        for (crid, ids) in Dictionary(grouping: starts, by: \.clientRequestId) where Set(ids.map(\.flowId)).count > 1 {
            out.append("client request id \(crid) was acknowledged as flows \(Set(ids.map(\.flowId)).sorted())")
        }
        for (crid, named) in Dictionary(grouping: flows.filter { $0.clientRequestId != nil }, by: { $0.clientRequestId! }) where named.count > 1 {
            out.append("client request id \(crid) names \(named.count) flows in the database")
        }
        for flow in flows where flow.status != "completed" {
            out.append("flow \(flow.id) (\(flow.clientRequestId ?? "no client request id")) ended \(flow.status), not completed"
                       + (flow.error.map { ": \($0)" } ?? ""))
        }
        out += tokenViolations()
        out += fencingViolations()
        return out
    }

    private func tokenViolations() -> [String] {
        var out = [String]()
        var expected = [String: Int64]()
        var txIds = [String: String]()
        for flow in flows where flow.status == "completed" {
            if let tx = flow.txId, let other = txIds.updateValue(flow.id, forKey: tx) {
                out.append("flows \(other) and \(flow.id) completed with one transaction \(tx)")
            }
            switch flow.tokens {
            case .issue(let owner, let amount): expected[owner, default: 0] += amount
            case .move(let from, let to, let amount):
                expected[from, default: 0] -= amount
                expected[to, default: 0] += amount
            }
        }
        for owner in Set(expected.keys).union(balances.keys).sorted() where (expected[owner] ?? 0) != (balances[owner] ?? 0) {
            out.append("\(owner) holds \(balances[owner] ?? 0) tokens, but the completed flows leave \(expected[owner] ?? 0)")
        }
        return out
    }

    private func fencingViolations() -> [String] {
        var out = [String]()
        var owners = [Term: String]()
        for (node, terms) in won.sorted(by: { $0.key < $1.key }) {
            for term in terms.sorted() {
                if let other = owners.updateValue(node, forKey: term) { out.append("epoch \(term) was won by both \(other) and \(node)") }
            }
        }
        var fences = [String: UInt64]()
        for (i, write) in writes.enumerated() {
            if rpcWorkers.contains(write.writer) {
                if write.table != "flows" || write.status != "running" {
                    out.append("write \(i) (\(write.table) \(write.key), \(write.status ?? "")) by RPC worker \(write.writer): it may write starts only")
                }
                continue
            }
            guard let epoch = write.epoch else {
                out.append("write \(i) (\(write.table) \(write.key) by \(write.writer)) was made without a fencing epoch")
                continue
            }
            let term = Term(write.resource, epoch)
            if won[write.writer]?.contains(term) != true {
                out.append("write \(i) (\(write.table) \(write.key)) by \(write.writer) was accepted under epoch \(term), which \(write.writer) never won: a deposed master's write")
            }
            if write.table == "hawser_fence" {
                let fence = fences[write.resource] ?? 0
                if epoch <= fence { out.append("write \(i): the fence went from epoch \(Term(write.resource, fence)) to \(term)") }
                fences[write.resource] = epoch
            }
        }
        return out
    }
}
