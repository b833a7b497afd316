import Synchronization

/// A flow's start that is not committed on its own but with the flow's first durable write,
/// which saves one commit round. Only a caller that waits for the flow's end uses it: it answers
/// no one before that write, so a crash before it loses nothing anyone was told of.
///
/// That write settles the start: the flow was created, or its client request id already named
/// another flow (then the store skips this flow's writes and the flow stops). A flow that fails
/// before its start is durable, or whose write fails, settles it with the error.
final class DeferredStart: Sendable {
    let record: FlowRecord
    private struct State {
        var outcome: Result<FlowRecord, any Error>?
        var waiters: [CheckedContinuation<FlowRecord, any Error>] = []
    }
    private let state = Mutex(State())

    init(_ record: FlowRecord) { self.record = record }

    /// The first outcome stands; later ones change nothing.
    func settle(_ outcome: Result<FlowRecord, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<FlowRecord, any Error>] in
            guard state.outcome == nil else { return [] }
            state.outcome = outcome
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(with: outcome) }
    }

    /// Whether the start is durable as this flow.
    var isCreated: Bool {
        state.withLock { state in
            guard case .success(let stored)? = state.outcome else { return false }
            return stored.id == record.id
        }
    }

    /// Waits for the outcome: this flow's record, or the one its client request id named before.
    /// Not cancellable: the flow's first write settles it soon.
    func stored() async throws -> FlowRecord {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = state.withLock { state -> Result<FlowRecord, any Error>? in
                if state.outcome == nil { state.waiters.append(continuation) }
                return state.outcome
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }
}

/// Thrown inside a flow whose deferred start was refused: its client request id names another flow.
struct StartRefused: Error, CustomStringConvertible {
    var description: String { "the client request id already names another flow; this one was not created" }
}
