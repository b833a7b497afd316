import HawserCore

/// When the link manager may next try to deliver to each peer, sans-I/O (time is an input): a
/// failed delivery puts the peer off for `initialDelay`, doubled after each further failure up
/// to `maxDelay`; a delivery that succeeds clears it. The peer's later messages wait too, so
/// its messages arrive in the order they were written.
public struct LinkBackoff: Sendable, Equatable {
    public struct Policy: Sendable, Equatable {
        public var initialDelay: Duration
        public var maxDelay: Duration

        public init(initialDelay: Duration = .milliseconds(50), maxDelay: Duration = .seconds(30)) {
            self.initialDelay = initialDelay
            self.maxDelay = maxDelay
        }
    }

    private struct Peer: Sendable, Equatable {
        var failures: Int
        var retryAt: Instant
    }

    public let policy: Policy
    private var peers: [String: Peer] = [:]

    public init(policy: Policy) { self.policy = policy }

    /// The peers put off at `now`.
    public func putOff(now: Instant) -> Set<String> { Set(peers.filter { now < $0.value.retryAt }.keys) }

    /// A delivery to `peer` failed at `now`; returns when the next may be tried.
    @discardableResult
    public mutating func failed(_ peer: String, now: Instant) -> Instant {
        let failures = (peers[peer]?.failures ?? 0) + 1
        let retryAt = now.adding(delay(failures: failures))
        peers[peer] = Peer(failures: failures, retryAt: retryAt)
        return retryAt
    }

    public mutating func delivered(_ peer: String) { peers[peer] = nil }

    /// The earliest time after `now` that a peer put off may be tried again, if any is. (A time
    /// already past is not one to wait for: that peer is tried, or being tried, now.)
    public func nextRetry(after now: Instant) -> Instant? { peers.values.map(\.retryAt).filter { $0 > now }.min() }

    /// Failures in a row of `peer` so far.
    public func failures(of peer: String) -> Int { peers[peer]?.failures ?? 0 }

    /// The wait after the `failures`-th failure in a row: initialDelay · 2^(failures-1), capped.
    func delay(failures: Int) -> Duration {
        var delay = policy.initialDelay
        for _ in 1..<max(1, min(failures, 63)) {
            delay = delay * 2
            if delay >= policy.maxDelay { return policy.maxDelay }
        }
        return min(delay, policy.maxDelay)
    }
}

extension Instant {
    /// Saturating: a delay configured huge must not crash the node on the arithmetic.
    func adding(_ duration: Duration) -> Instant {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        let (sum, overflowAgain) = microsecondsSinceEpoch.addingReportingOverflow(whole &+ attoseconds / 1_000_000_000_000)
        return Instant(microsecondsSinceEpoch: overflow || overflowAgain ? .max : sum)
    }
}
