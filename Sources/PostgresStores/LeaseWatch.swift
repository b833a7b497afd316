/// The rules that bound one request's use of a pooled PostgreSQL connection (`PostgresDatabase`),
/// where PostgresNIO sets no bound (sans I/O: the shell checks on a timer, giving the time and
/// whether the connection has closed, and acts on the verdict).
///
/// - Until the pool grants a connection, the request gives up after `timeout`: while the server
///   cannot be reached the pool keeps trying to connect and would hold it for a minute.
/// - Once granted, the request runs to its end (a crash of the server closes the connection,
///   which fails the query in flight), except on a connection that has closed: PostgresNIO drops
///   a query written to a closed connection without ever answering it (its write has no promise:
///   vapor/postgres-nio#487, reverted in #501), so the request would wait for ever. A server ends
///   a session that way when its client stalls inside a transaction
///   (`idle_in_transaction_session_timeout`, e.g. a paused process). A request whose connection
///   is seen closed at two checks in a row (`closedCheck` apart) is given up: the answer to a
///   query that was under way at the close comes at once, so the second check only gives up a
///   request that waits on a dropped query. No one else can use a closed connection, so it is
///   safe to abandon.
struct LeaseWatch: Sendable {
    /// How often a request that has its connection looks whether the connection has closed.
    static let closedCheck = Duration.milliseconds(500)

    enum Verdict: Sendable, Equatable {
        /// Check again after this long.
        case wait(Duration)
        /// The request is over (it ended, or was given up): no more checks.
        case done
        /// Give the request up: no connection came within the timeout.
        case noConnection
        /// Give the request up: its connection closed under it.
        case connectionClosed
    }

    private enum Phase: Sendable, Equatable {
        case waiting(until: ContinuousClock.Instant)
        case granted(closedAtLastCheck: Bool)
        case over
    }

    private var phase: Phase

    init(now: ContinuousClock.Instant, timeout: Duration) {
        phase = .waiting(until: now + timeout)
    }

    /// The pool granted a connection: false if the request was given up already (it must not use it).
    mutating func grant() -> Bool {
        guard case .waiting = phase else { return false }
        phase = .granted(closedAtLastCheck: false)
        return true
    }

    /// The request gives up waiting for a connection (its caller was cancelled, or the pool
    /// refused it): true if it had none yet, so that nothing of it runs on a connection.
    mutating func expire() -> Bool {
        guard case .waiting = phase else { return false }
        phase = .over
        return true
    }

    /// The request has its outcome.
    mutating func end() { phase = .over }

    /// When the first check is due.
    func firstCheck(now: ContinuousClock.Instant) -> Duration {
        guard case .waiting(let until) = phase else { return Self.closedCheck }
        return min(Self.closedCheck, until - now)
    }

    /// A timer's check: `connectionClosed` says whether the granted connection has closed.
    mutating func check(now: ContinuousClock.Instant, connectionClosed: Bool) -> Verdict {
        switch phase {
        case .over:
            return .done
        case .waiting(let until):
            guard now >= until else { return .wait(min(Self.closedCheck, until - now)) }
            phase = .over
            return .noConnection
        case .granted(let closedBefore):
            guard connectionClosed else {
                phase = .granted(closedAtLastCheck: false)
                return .wait(Self.closedCheck)
            }
            guard closedBefore else {
                phase = .granted(closedAtLastCheck: true)
                return .wait(Self.closedCheck)
            }
            phase = .over
            return .connectionClosed
        }
    }
}
