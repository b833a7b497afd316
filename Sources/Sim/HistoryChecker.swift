import HawserCore

/// The notary's and the node's promises, checked against what clients were told (`History`,
/// docs/history.md). Sans-I/O: a history in, violations out, each naming the lines that show it.
///
/// The notary:
/// - `double_spend`: no state is consumed by two transactions, by the notary's own word (its
///   `committed` answers, with the inputs the request named, and the consumers its conflicts
///   name; a conflict names the SHA-256 of the consumer's id, so consumers are compared so);
/// - `changed_outcome`: a transaction asked again gets the answer it got before (an acknowledged
///   outcome is never lost);
/// - `false_conflict`: a conflict names as consumer a transaction that, as requested in this
///   history, does not have that state among its inputs.
///
/// The node:
/// - `duplicate_flow`: one client request id is acknowledged as one flow only;
/// - `changed_result`: a flow's result, read twice, is the same;
/// - `unfinished`: every acknowledged start has a result in the history (unless allowed).
public struct HistoryChecker: Sendable {
    /// The statuses a flow ends with (docs/history.md); a `result` with another says nothing of its end.
    static let finalStatuses: Set<String> = ["completed", "failed", "killed"]

    public struct Violation: Sendable, Hashable, CustomStringConvertible {
        /// Stable: `double_spend`, `changed_outcome`, `false_conflict`, `duplicate_flow`,
        /// `changed_result`, `unfinished`.
        public var rule: String
        public var detail: String
        /// The lines that show it.
        public var lines: [Int]
        public var description: String { "\(rule): \(detail) (lines \(lines.map(String.init).joined(separator: ", ")))" }

        public init(rule: String, detail: String, lines: [Int]) {
            self.rule = rule
            self.detail = detail
            self.lines = lines
        }
    }

    /// What was checked, for the summary line.
    public struct Counts: Sendable, Hashable {
        public var events = 0
        public var notarisations = 0
        public var flows = 0
    }

    public var allowUnfinished = false

    public init(allowUnfinished: Bool = false) {
        self.allowUnfinished = allowUnfinished
    }

    public func check(_ history: History) -> (counts: Counts, violations: [Violation]) {
        var counts = Counts(events: history.events.count)
        var out = [Violation]()
        // Notary: the inputs each transaction was requested with, its first answer, and every
        // consumer the notary named for each state (committed answers and conflicts), by the
        // SHA-256 of its id, as conflicts name them.
        var inputs = [SecureHash: (refs: [StateRef], line: Int)]()
        var answers = [SecureHash: (outcome: History.Outcome, line: Int)]()
        var consumers = [StateRef: [SecureHash: Int]]()  // state -> hash of the consumer's id -> first line
        var conflictsNamed = [(state: StateRef, consumer: SecureHash, line: Int)]()
        var byHash = [SecureHash: SecureHash]()  // hash of a requested transaction's id -> its id
        // Node: the flow each client request id was acknowledged as, and each flow's result.
        var flows = [String: (flowId: String, line: Int)]()
        var results = [String: (status: String, result: String?, line: Int)]()

        // Every transaction's inputs first: an answer may come before its `invoke` down the file
        // (clients writing one file each, merged), and counts all the same.
        for event in history.events {
            if event.kind == .invoke, case .notarise(let txId, let refs?, _) = event.op, inputs[txId] == nil {
                inputs[txId] = (refs, event.line)
                byHash[SecureHash.sha256(txId.bytes)] = txId
            }
        }
        for event in history.events {
            switch event.op {
            case .notarise(let txId, _, let outcome):
                guard event.kind == .ok, let outcome else { continue }
                if let first = answers[txId] {
                    if first.outcome != outcome {
                        out.append(Violation(rule: "changed_outcome", detail: "transaction \(txId) was answered \(Self.name(first.outcome)), then \(Self.name(outcome))",
                                             lines: [first.line, event.line]))
                    }
                } else {
                    answers[txId] = (outcome, event.line)
                    counts.notarisations += 1
                }
                switch outcome {
                case .committed:
                    let consumer = SecureHash.sha256(txId.bytes)
                    for ref in inputs[txId]?.refs ?? [] where consumers[ref, default: [:]][consumer] == nil {
                        consumers[ref, default: [:]][consumer] = event.line
                    }
                case .conflict(let consumed):
                    for (ref, named) in consumed.sorted(by: { $0.key < $1.key }) {
                        for by in named.sorted() {
                            if consumers[ref, default: [:]][by] == nil { consumers[ref, default: [:]][by] = event.line }
                            conflictsNamed.append((ref, by, event.line))
                        }
                    }
                case .timeWindowInvalid:
                    break
                }
            case .start(let clientRequestId, let flowId):
                guard event.kind == .ok, let flowId else { continue }
                if let first = flows[clientRequestId] {
                    if first.flowId != flowId {
                        out.append(Violation(rule: "duplicate_flow", detail: "client request id \(clientRequestId) was acknowledged as flow \(first.flowId), then as \(flowId)",
                                             lines: [first.line, event.line]))
                    }
                } else {
                    flows[clientRequestId] = (flowId, event.line)
                    counts.flows += 1
                }
            case .result(let flowId, let status, let result):
                // Only an end counts: a flow read while running, or parked in the hospital, has
                // not ended, and must not hide that it never did (`unfinished`). Read so after
                // it ended, though, its end was lost.
                guard Self.finalStatuses.contains(status) else {
                    if let first = results[flowId] {
                        out.append(Violation(rule: "changed_result", detail: "flow \(flowId) ended \(first.status), then read as \(status)",
                                             lines: [first.line, event.line]))
                    }
                    continue
                }
                if let first = results[flowId] {
                    if first.status != status || first.result != result {
                        out.append(Violation(rule: "changed_result", detail: "flow \(flowId) ended \(first.status), then read as \(status)\(first.result != result ? " with another result" : "")",
                                             lines: [first.line, event.line]))
                    }
                } else {
                    results[flowId] = (status, result, event.line)
                }
            }
        }
        /// A consumer by its id where the history requested it, else by the hash a conflict named.
        func name(_ hash: SecureHash) -> String { byHash[hash].map(\.hex) ?? "the transaction whose id hashes to \(hash.hex)" }
        for (ref, byTx) in consumers.sorted(by: { $0.key < $1.key }) where byTx.count > 1 {
            let named = byTx.sorted { ($0.value, $0.key) < ($1.value, $1.key) }
            out.append(Violation(rule: "double_spend", detail: "state \(ref) consumed by \(named.map { name($0.key) }.joined(separator: " and "))",
                                 lines: named.map(\.value)))
        }
        for named in conflictsNamed {
            if let consumer = byHash[named.consumer], let requested = inputs[consumer], !requested.refs.contains(named.state) {
                out.append(Violation(rule: "false_conflict", detail: "state \(named.state) named consumed by \(consumer.hex), which was requested without it",
                                     lines: [requested.line, named.line]))
            }
        }
        if !allowUnfinished {
            for (clientRequestId, flow) in flows.sorted(by: { $0.value.line < $1.value.line }) where results[flow.flowId] == nil {
                out.append(Violation(rule: "unfinished", detail: "flow \(flow.flowId) (client request id \(clientRequestId)) has no result",
                                     lines: [flow.line]))
            }
        }
        return (counts, out)
    }

    static func name(_ outcome: History.Outcome) -> String {
        switch outcome {
        case .committed: "committed"
        case .conflict(let consumed):
            "conflict (\(consumed.sorted { $0.key < $1.key }.map { "\($0.key) by id hash \($0.value.sorted().map(\.hex).joined(separator: " and "))" }.joined(separator: ", ")))"
        case .timeWindowInvalid: "time_window_invalid"
        }
    }
}
