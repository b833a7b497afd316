/// How `NotaryClient` retries a call that failed on the way (connection error, timeout, 503).
///
/// Retrying is always safe: the notary is idempotent per transaction id, so sending a request again
/// returns the outcome already recorded for it. Each retry goes to the next base URL (failover) after
/// an exponential back-off with jitter, until `maxAttempts` attempts or the `deadline` run out.
public struct RetryPolicy: Sendable, Equatable {
    /// Most attempts per call, the first one included. At least 1.
    public var maxAttempts: Int
    /// The back-off before the first retry; it doubles on each further retry.
    public var baseBackoff: Duration
    /// The back-off never exceeds this.
    public var maxBackoff: Duration
    /// The longest one attempt may take (connect, send, wait for the answer).
    public var attemptTimeout: Duration
    /// The longest a whole call may take, retries and back-offs included.
    public var deadline: Duration

    public init(maxAttempts: Int = 8, baseBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(2),
                attemptTimeout: Duration = .seconds(35), deadline: Duration = .seconds(60)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseBackoff = baseBackoff
        self.maxBackoff = maxBackoff
        self.attemptTimeout = attemptTimeout
        self.deadline = deadline
    }

    public static let `default` = RetryPolicy()

    /// Never retry: one attempt only.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The pause before retry number `retry` (1 for the first retry), given `jitter` in [0, 1):
    /// the exponential step `min(maxBackoff, baseBackoff * 2^(retry-1))`, scaled into [½, 1) of itself
    /// ("equal jitter"), so that clients that failed together do not retry in lock-step.
    public func backoff(beforeRetry retry: Int, jitter: Double) -> Duration {
        let base = Self.nanoseconds(baseBackoff), cap = Self.nanoseconds(maxBackoff)
        guard base > 0, cap > 0 else { return .zero }
        let shift = min(max(retry - 1, 0), 62)
        let (doubled, overflow) = base.multipliedReportingOverflow(by: Int64(1) << shift)
        let step = overflow || shift >= 62 ? cap : min(cap, doubled)
        let j = min(max(jitter, 0), 1)
        return .nanoseconds(Int64(Double(step) * (0.5 + 0.5 * j)))
    }

    /// The pause before retry number `retry`, with fresh random jitter.
    public func backoff(beforeRetry retry: Int) -> Duration {
        backoff(beforeRetry: retry, jitter: Double.random(in: 0..<1))
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (s < 0 ? .min : .max) : ns &+ atto / 1_000_000_000
    }
}
