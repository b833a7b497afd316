import Synchronization

/// Which refusals a listener logs (a peer listener's refused deliveries, connections over a cap).
/// Anyone who can reach the port can be refused, and a line each let them write the log at their
/// own pace (2,000 unsigned deliveries from a non-member made 796 KB of warnings in 4 s: found
/// from outside). At most one line per refusal code every `interval`, saying how many with that
/// code went unlogged since the last. Sans I/O but for its lock.
public final class RefusalLog: Sendable {
    public let interval: Duration
    private let codes = Mutex<[String: (loggedAt: ContinuousClock.Instant, unlogged: Int)]>([:])

    public init(interval: Duration) { self.interval = interval }

    /// Whether a refusal with `code` at `now` is logged: if so, how many with that code were not
    /// since the last line; nil if it is not.
    public func admit(_ code: String, at now: ContinuousClock.Instant) -> Int? {
        codes.withLock { codes in
            if let seen = codes[code], now - seen.loggedAt < interval {
                codes[code]?.unlogged += 1
                return nil
            }
            defer { codes[code] = (now, 0) }
            return codes[code]?.unlogged ?? 0
        }
    }
}
