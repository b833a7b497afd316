import Foundation
import HawserCore
import Synchronization

/// One event of a history (docs/history.md): what a client sent or was told. Made only by its
/// constructors, one per row of the document's tables, so that every event carries the fields its
/// `type` and `op` need; `line(time:)` is its JSON line, the one form every writer of histories
/// in Hawser uses and `History(jsonLines:)` reads.
public struct HistoryEvent: Sendable, Hashable {
    /// The line's members, except `time` (stamped when the line is written).
    public private(set) var fields: [String: JSONValue]

    private init(_ kind: History.Kind, _ op: String, _ fields: [String: JSONValue]) {
        self.fields = fields.merging(["type": .string(kind.rawValue), "op": .string(op)]) { own, _ in own }
    }

    // MARK: notarise

    /// The request for `txId` was sent, spending `inputs` (its references are no inputs).
    public static func notariseInvoke(txId: SecureHash, inputs: [StateRef]) -> HistoryEvent {
        HistoryEvent(.invoke, "notarise", ["txId": .string(txId.hex), "inputs": .array(inputs.map { .string($0.description) })])
    }

    /// The notary's verified answer for `txId`.
    public static func notariseOk(txId: SecureHash, outcome: NotarisationOutcome) -> HistoryEvent {
        var fields: [String: JSONValue] = ["txId": .string(txId.hex), "outcome": .string(outcome.kindName)]
        if case .conflict(let conflicts) = outcome {
            fields["conflicts"] = .array(conflicts.map { conflict in
                .object(["ref": .string(conflict.ref.description), "kind": .string(conflict.kind == .input ? "input" : "reference"),
                         "consumingTxIdHash": .string(conflict.consumingTxIdHash.hex)])
            })
        }
        return HistoryEvent(.ok, "notarise", fields)
    }

    /// The request for `txId` was certainly not carried out (a 4xx answer); `error` says what came.
    public static func notariseFail(txId: SecureHash, error: String) -> HistoryEvent {
        HistoryEvent(.fail, "notarise", ["txId": .string(txId.hex), "error": .string(error)])
    }

    /// The client cannot tell whether the request for `txId` was carried out (a time-out, a lost
    /// connection, a 5xx, an answer that failed verification); `error` says what happened.
    public static func notariseInfo(txId: SecureHash, error: String) -> HistoryEvent {
        HistoryEvent(.info, "notarise", ["txId": .string(txId.hex), "error": .string(error)])
    }

    // MARK: start and result

    /// A flow start with `clientRequestId` was sent.
    public static func startInvoke(clientRequestId: String) -> HistoryEvent {
        HistoryEvent(.invoke, "start", ["clientRequestId": .string(clientRequestId)])
    }

    /// The node acknowledged the start as `flowId`.
    public static func startOk(clientRequestId: String, flowId: String) -> HistoryEvent {
        HistoryEvent(.ok, "start", ["clientRequestId": .string(clientRequestId), "flowId": .string(flowId)])
    }

    /// The start was certainly not carried out (a 4xx answer).
    public static func startFail(clientRequestId: String, error: String) -> HistoryEvent {
        HistoryEvent(.fail, "start", ["clientRequestId": .string(clientRequestId), "error": .string(error)])
    }

    /// The client cannot tell whether the start was carried out.
    public static func startInfo(clientRequestId: String, error: String) -> HistoryEvent {
        HistoryEvent(.info, "start", ["clientRequestId": .string(clientRequestId), "error": .string(error)])
    }

    /// A flow's end as the node reported it: its final status and, if read, its result.
    public static func result(flowId: String, status: String, result: JSONValue?) -> HistoryEvent {
        var fields: [String: JSONValue] = ["flowId": .string(flowId), "status": .string(status)]
        fields["result"] = result
        return HistoryEvent(.ok, "result", fields)
    }

    /// The same event, naming the client that saw it (`client`: any text, e.g. `c7`).
    public func by(client: String) -> HistoryEvent {
        var event = self
        event.fields["client"] = .string(client)
        return event
    }

    /// The JSON line, compact with members sorted, without the newline; `time` (nanoseconds since
    /// the history began) added when given.
    public func line(time: Int64? = nil) -> String {
        var fields = fields
        if let time { fields["time"] = .number(JSONNumber(time)) }
        return String(decoding: JSONValue.object(fields).bytes, as: UTF8.self)
    }
}

/// Writes a history to a file while clients run: each event is stamped with its `time` and
/// appended under one lock, so the lines are in the order the events were recorded and their
/// times never decrease. Lines wait in a buffer of at most `bufferBytes` that is written out when
/// it fills and on `close()`: memory stays bounded however long the run.
public final class HistoryWriter: Sendable {
    public let path: String
    /// How many bytes of lines are held before they are written.
    public static let bufferBytes = 64 << 10

    /// The history file could not be created or written.
    public struct WriteError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    private struct State {
        var file: FileHandle?
        var buffer: [UInt8] = []
        /// The first failed write: later lines are dropped and `close()` throws it.
        var failure: WriteError?
    }
    private let state: Mutex<State>
    private let start = ContinuousClock.now

    /// Creates `path` (replacing a file there) for the history.
    public init(path: String) throws(WriteError) {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw WriteError(description: "cannot create the history file \(path)")
        }
        var initial = State(file: file)
        initial.buffer.reserveCapacity(Self.bufferBytes)
        state = Mutex(initial)
    }

    /// Appends `event` as one line, stamped with the nanoseconds since this writer was made.
    public func record(_ event: HistoryEvent) {
        state.withLock { state in
            precondition(state.file != nil, "a history event recorded after the writer was closed")
            let elapsed = ContinuousClock.now - start
            let time = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
            state.buffer += Array(event.line(time: time).utf8)
            state.buffer.append(UInt8(ascii: "\n"))
            if state.buffer.count >= Self.bufferBytes { flush(&state) }
        }
    }

    /// Writes what is buffered and closes the file; throws if any line could not be written.
    public func close() throws(WriteError) {
        let failure = state.withLock { state -> WriteError? in
            guard let file = state.file else { return state.failure }
            flush(&state)
            do { try file.close() } catch {
                if state.failure == nil { state.failure = WriteError(description: "cannot close the history file \(path): \(error)") }
            }
            state.file = nil
            return state.failure
        }
        if let failure { throw failure }
    }

    private func flush(_ state: inout State) {
        defer { state.buffer.removeAll(keepingCapacity: true) }
        guard state.failure == nil, let file = state.file, !state.buffer.isEmpty else { return }
        do { try file.write(contentsOf: state.buffer) } catch {
            state.failure = WriteError(description: "cannot write the history file \(path): \(error)")
        }
    }
}
