import Foundation
import HawserCore

/// A history of what clients asked a notary or a node and what they were told, read from JSON
/// lines (docs/history.md): one event per line, in the order the clients saw them. Any client,
/// in any language, can write one; `HistoryChecker` judges it.
public struct History: Sendable {
    /// What a client saw: it sent a request (`invoke`), got an answer (`ok`), learned that the
    /// request was not carried out (`fail`), or cannot tell (`info`: a time-out, a lost connection).
    public enum Kind: String, Sendable, Codable { case invoke, ok, fail, info }

    /// One line of the history. Which fields are set depends on `op` and `kind` (docs/history.md).
    public struct Event: Sendable {
        public var line: Int
        public var kind: Kind
        public var op: Op
    }

    public enum Op: Sendable {
        /// A notarisation of `txId`: its inputs on `invoke`, its outcome on `ok`.
        case notarise(txId: SecureHash, inputs: [StateRef]?, outcome: Outcome?)
        /// A flow start with a client request id: on `ok`, the flow id the node gave it.
        case start(clientRequestId: String, flowId: String?)
        /// A flow's end as the node reported it: its status and result (canonical JSON text).
        case result(flowId: String, status: String, result: String?)
    }

    public enum Outcome: Sendable, Hashable {
        case committed
        /// Each state (input or reference) already consumed, with the SHA-256 of the id of each
        /// transaction the answer names as its consumer (more than one is a double spend).
        case conflict([StateRef: Set<SecureHash>])
        case timeWindowInvalid
    }

    public var events: [Event]

    /// A line that is not a history event: its number and what is wrong with it.
    public struct ReadError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var problem: String
        public var description: String { "line \(line): \(problem)" }
    }

    /// A history a simulation recorded.
    init(events: [Event]) { self.events = events }

    /// Reads JSON lines (ended by LF or CRLF); blank lines are skipped. Throws `ReadError` at the
    /// first bad line, and at an `invoke` of a transaction invoked before with other inputs (a
    /// transaction's id fixes its inputs: the history is not of one ledger).
    public init(jsonLines text: String) throws {
        events = []
        var invoked = [SecureHash: (inputs: [StateRef], line: Int)]()
        // "\r\n" is one Character in Swift: a split on "\n" alone kept CRLF lines whole.
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = index + 1
            guard !raw.allSatisfy(\.isWhitespace) else { continue }
            let object: [String: Any]
            do {
                guard let parsed = try JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any] else {
                    throw ReadError(line: line, problem: "not a JSON object")
                }
                object = parsed
            } catch let error as ReadError {
                throw error
            } catch {
                throw ReadError(line: line, problem: "not JSON")
            }
            let event = try Self.event(object, line: line)
            if event.kind == .invoke, case .notarise(let txId, let inputs?, _) = event.op {
                if let first = invoked[txId] {
                    guard first.inputs == inputs else {
                        throw ReadError(line: line, problem: "transaction \(txId) was invoked at line \(first.line) with other inputs")
                    }
                } else {
                    invoked[txId] = (inputs, line)
                }
            }
            events.append(event)
        }
    }

    private static func event(_ object: [String: Any], line: Int) throws -> Event {
        func string(_ key: String) throws -> String {
            guard let value = object[key] as? String, !value.isEmpty else { throw ReadError(line: line, problem: "`\(key)` must be a non-empty string") }
            return value
        }
        func optionalString(_ key: String) throws -> String? { object[key] == nil ? nil : try string(key) }
        guard let kindText = object["type"] as? String, let kind = Kind(rawValue: kindText) else {
            throw ReadError(line: line, problem: "`type` must be invoke, ok, fail or info")
        }
        switch try string("op") {
        case "notarise":
            let txId = try hash(try string("txId"), line: line)
            var inputs: [StateRef]?
            if let raw = object["inputs"] {
                guard let list = raw as? [String] else { throw ReadError(line: line, problem: "`inputs` must be an array of state references") }
                inputs = try list.map { try stateRef($0, line: line) }
            }
            if kind == .invoke, inputs == nil { throw ReadError(line: line, problem: "a notarise invoke needs `inputs`") }
            var outcome: Outcome?
            if kind == .ok { outcome = try self.outcome(object, line: line) }
            return Event(line: line, kind: kind, op: .notarise(txId: txId, inputs: inputs, outcome: outcome))
        case "start":
            let flowId = try optionalString("flowId")
            if kind == .ok, flowId == nil { throw ReadError(line: line, problem: "a start's ok needs `flowId`") }
            return Event(line: line, kind: kind, op: .start(clientRequestId: try string("clientRequestId"), flowId: flowId))
        case "result":
            guard kind == .ok else { throw ReadError(line: line, problem: "a result is always of type ok") }
            var result: String?
            if let value = object["result"] {
                let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
                result = String(decoding: data, as: UTF8.self)
            }
            return Event(line: line, kind: kind, op: .result(flowId: try string("flowId"), status: try string("status"), result: result))
        case let other:
            throw ReadError(line: line, problem: "unknown op \(other): notarise, start or result")
        }
    }

    private static func outcome(_ object: [String: Any], line: Int) throws -> Outcome {
        switch object["outcome"] as? String {
        case "committed": return .committed
        case "time_window_invalid": return .timeWindowInvalid
        case "conflict":
            guard let list = object["conflicts"] as? [[String: Any]], !list.isEmpty else {
                throw ReadError(line: line, problem: "a conflict needs `conflicts`: [{\"ref\": ..., \"consumingTxIdHash\": ...}]")
            }
            var consumed = [StateRef: Set<SecureHash>]()
            for entry in list {
                guard let ref = entry["ref"] as? String, let by = entry["consumingTxIdHash"] as? String else {
                    throw ReadError(line: line, problem: "each conflict needs `ref` and `consumingTxIdHash`")
                }
                if let kind = entry["kind"], kind as? String != "input" && kind as? String != "reference" {
                    throw ReadError(line: line, problem: "a conflict's `kind` must be input or reference")
                }
                consumed[try stateRef(ref, line: line), default: []].insert(try hash(by, line: line))
            }
            return .conflict(consumed)
        default:
            throw ReadError(line: line, problem: "`outcome` must be committed, conflict or time_window_invalid")
        }
    }

    /// 64 hexadecimal digits, either case.
    private static func hash(_ text: String, line: Int) throws -> SecureHash {
        guard let hash = SecureHash(hex: text) else { throw ReadError(line: line, problem: "a hash must be 64 hexadecimal digits, not \(text)") }
        return hash
    }

    /// The text form of `StateRef`: 64 hexadecimal digits, a colon, a plain decimal index.
    private static func stateRef(_ text: String, line: Int) throws -> StateRef {
        guard let ref = StateRef(text) else {
            throw ReadError(line: line, problem: "a state reference must be TXID:INDEX (64 hexadecimal digits, a colon, a plain decimal number), not \(text)")
        }
        return ref
    }
}
