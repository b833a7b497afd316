/// When one call on the PostgreSQL pool ends: at the first of its body's own end, the lease
/// bound passing before it has a connection, its connection closing, the request bound passing
/// once it has one, and its caller's cancellation. Later events change nothing, so a call ends
/// once. No I/O: `PostgresCall` feeds it events and carries out what it answers.
///
/// The bounds exist because PostgresNIO (1.33.2) never answers a query written to a connection
/// that has closed: its promise is dropped with the connection's handlers
/// (https://github.com/vapor/postgres-nio/pull/487, reverted in #501; #497 open). A body waiting
/// for such a query would wait for ever, so the caller stops waiting for it.
struct PostgresCallRules: Equatable, Sendable {
    enum Phase: Equatable, Sendable { case leasing, running, ended }

    /// Why the call ended.
    enum Ending: Equatable, Sendable {
        /// The body returned or threw on a connection.
        case body
        /// The body threw before it had a connection: the pool refused the request.
        case leaseFailed
        /// No connection came within the lease bound.
        case noConnection
        /// The connection closed while the body ran: anything it waits for may never come.
        case connectionClosed
        /// The body ran past the request bound: its connection is to be closed.
        case requestTimedOut
        case cancelled
    }

    enum Action: Equatable, Sendable {
        case none
        /// The call ends now, for this reason.
        case end(Ending)
        /// A connection came in time: watch it for its close and start the request bound.
        case run
        /// A connection came after the call ended: hand it back at once.
        case refuse
    }

    private(set) var phase = Phase.leasing

    mutating func connected() -> Action {
        switch phase {
        case .leasing:
            phase = .running
            return .run
        case .running, .ended:
            return .refuse
        }
    }

    mutating func bodyEnded() -> Action {
        switch phase {
        case .leasing: return end(.leaseFailed)
        case .running: return end(.body)
        case .ended: return .none
        }
    }

    mutating func leaseBoundPassed() -> Action { phase == .leasing ? end(.noConnection) : .none }
    mutating func connectionClosed() -> Action { phase == .running ? end(.connectionClosed) : .none }
    mutating func requestBoundPassed() -> Action { phase == .running ? end(.requestTimedOut) : .none }
    mutating func cancelled() -> Action { phase == .ended ? .none : end(.cancelled) }

    private mutating func end(_ ending: Ending) -> Action {
        phase = .ended
        return .end(ending)
    }
}
