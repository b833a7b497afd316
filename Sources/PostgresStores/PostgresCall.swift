import HawserCore
import NIOCore
import PostgresNIO
import Synchronization

/// One call on the pool, bounded as a whole by `PostgresCallRules`: the caller hears the first
/// ending, and never waits for a body that cannot end (a statement sent on a connection that had
/// closed). Such a body stays suspended, holding only its closed connection, which the pool has
/// dropped already; the node avoids sending one where it can (`PostgresDatabase.transaction`).
final class PostgresCall<T: Sendable>: Sendable {
    private struct State {
        var rules = PostgresCallRules()
        var outcome: Result<T, any Error>?
        var waiter: CheckedContinuation<T, any Error>?
        /// Deadlines and watches to drop once the call has ended.
        var cleanup: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())
    private let server: String

    private init(server: String) { self.server = server }

    /// Runs `body` on a connection leased from `client` and returns what it returns, or fails with
    /// `database_unavailable` when no connection comes within `leaseBound`, when the connection
    /// closes while `body` runs, or when `body` runs longer than `requestBound` (its connection
    /// is closed then, which ends the server's side of it).
    static func run(on client: PostgresClient, watch: ConnectionWatch, leaseBound: Duration, requestBound: Duration,
                    server: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let call = PostgresCall(server: server)
        let task = Task {
            let result: Result<T, any Error>
            do {
                result = .success(try await client.withConnection { connection in
                    try call.connected(connection, watch: watch, bound: requestBound)
                    return try await body(connection)
                })
            } catch {
                result = .failure(error)
            }
            call.apply({ $0.bodyEnded() }) { ending in
                // The pool gave up connecting (after its own minute of attempts).
                guard ending == .leaseFailed, case .failure(let error) = result,
                      !(error is PSQLError || error is CancellationError) else { return result }
                return .failure(StoreDatabaseError(.unavailable, "cannot connect to PostgreSQL at \(server): \(error)"))
            }
        }
        let lease = Deadlines.shared.schedule(after: leaseBound) {
            let action = call.apply({ $0.leaseBoundPassed() }) { _ in
                .failure(StoreDatabaseError(.unavailable, "no connection to PostgreSQL at \(server) within \(leaseBound)"))
            }
            if action != .none { task.cancel() }  // withdraws the request from the pool's queue
        }
        call.onEnd { Deadlines.shared.cancel(lease) }
        return try await withTaskCancellationHandler {
            try await call.value()
        } onCancel: {
            call.apply({ $0.cancelled() }) { _ in .failure(CancellationError()) }
            task.cancel()
        }
    }

    /// The pool handed over `connection`: from now on its close or the request bound ends the call.
    /// Throws if the call has ended already, so that the connection goes back at once.
    private func connected(_ connection: PostgresConnection, watch: ConnectionWatch, bound: Duration) throws {
        guard state.withLock({ $0.rules.connected() }) == .run else { throw CancellationError() }
        let server = self.server
        let watching = watch.watch(connection) { [self] in
            apply({ $0.connectionClosed() }) { _ in
                .failure(StoreDatabaseError(.unavailable, "the connection to PostgreSQL at \(server) closed during the request"))
            }
        }
        let deadline = Deadlines.shared.schedule(after: bound) { [self] in
            let action = apply({ $0.requestBoundPassed() }) { _ in
                .failure(StoreDatabaseError(.unavailable, "PostgreSQL at \(server) did not answer within \(bound)"))
            }
            if action != .none { connection.close().whenComplete { _ in } }
        }
        onEnd {
            watch.stop(watching)
            Deadlines.shared.cancel(deadline)
        }
    }

    /// Feeds `event` to the rules; if it ends the call, `outcome` of the ending is what the
    /// caller hears.
    @discardableResult
    private func apply(_ event: (inout PostgresCallRules) -> PostgresCallRules.Action,
                       _ outcome: (PostgresCallRules.Ending) -> Result<T, any Error>) -> PostgresCallRules.Action {
        var cleanup = [@Sendable () -> Void]()
        var delivery: (CheckedContinuation<T, any Error>, Result<T, any Error>)?
        let action = state.withLock { state in
            let action = event(&state.rules)
            guard case .end(let ending) = action else { return action }
            let result = outcome(ending)
            swap(&cleanup, &state.cleanup)
            if let waiter = state.waiter {
                state.waiter = nil
                delivery = (waiter, result)
            } else {
                state.outcome = result
            }
            return action
        }
        cleanup.forEach { $0() }
        if let (waiter, result) = delivery { waiter.resume(with: result) }
        return action
    }

    /// Runs `cleanup` once the call has ended (at once if it has).
    private func onEnd(_ cleanup: @escaping @Sendable () -> Void) {
        let ended = state.withLock { state in
            if state.rules.phase == .ended { return true }
            state.cleanup.append(cleanup)
            return false
        }
        if ended { cleanup() }
    }

    private func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<T, any Error>? = state.withLock { state in
                guard let outcome = state.outcome else {
                    state.waiter = continuation
                    return nil
                }
                state.outcome = nil
                return outcome
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

/// The calls under way on each pooled connection, each told once if it closes. One callback on
/// a connection's close future serves its whole life: a future keeps its callbacks until it
/// completes, and a connection serves many calls.
final class ConnectionWatch: Sendable {
    struct Token: Sendable {
        fileprivate let connection: PostgresConnection.ID
        fileprivate let call: UInt64
    }

    private struct State {
        var next: UInt64 = 0
        var calls: [PostgresConnection.ID: [UInt64: @Sendable () -> Void]] = [:]
    }
    private let state = Mutex(State())

    /// Calls `closed` once if `connection` closes (at once if it has) before `stop(_:)`.
    func watch(_ connection: PostgresConnection, _ closed: @escaping @Sendable () -> Void) -> Token {
        let id = connection.id
        let (token, first) = state.withLock { state in
            state.next += 1
            let first = state.calls[id] == nil
            state.calls[id, default: [:]][state.next] = closed
            return (Token(connection: id, call: state.next), first)
        }
        if first { connection.closeFuture.whenComplete { [self] _ in self.closed(id) } }
        return token
    }

    func stop(_ token: Token) {
        _ = state.withLock { $0.calls[token.connection]?.removeValue(forKey: token.call) }
    }

    private func closed(_ connection: PostgresConnection.ID) {
        let calls = state.withLock { $0.calls.removeValue(forKey: connection) } ?? [:]
        for closed in calls.values { closed() }
    }
}
