import Coordination

/// Start-up parameters that bound what a stalled client can hold on the server, sent when a
/// session opens (no round trip of their own): the server ends a transaction left idle for
/// `bound` (its client stopped between two statements, so its locks go with it), and a statement
/// gives up waiting for a lock after `bound` (the client stopped waiting by then, and a wait left
/// on the server would take the lock after the client has gone).
public enum PostgresSessionLimits {
    public static func parameters(_ bound: Duration) -> [(String, String)] {
        let ms = "\(max(bound.millisecondsValue, 1))"
        return [("idle_in_transaction_session_timeout", ms), ("lock_timeout", ms)]
    }

    /// For a pool, whose sessions wait for each other's locks: a statement of one, waiting when
    /// the process stopped, is granted its lock as the server ends the session that held it, and
    /// then sits idle in turn. With each limit half of `bound`, the stopped process holds no lock
    /// `bound` after it stopped (with each at `bound`, a paused node held a standby's claim 10 s).
    public static func pool(_ bound: Duration) -> [(String, String)] {
        parameters(bound / 2)
    }
}
