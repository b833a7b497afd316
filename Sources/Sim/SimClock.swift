import Coordination

/// One process's monotonic clock against the simulation's true time: its own origin, and a rate
/// a little off true (a crystal's drift). Like CLOCK_MONOTONIC it keeps running while the process
/// is paused, and never steps.
public struct SimClock: Sendable, Hashable {
    public var originNs: Int64
    /// Local nanoseconds per true nanosecond.
    public var rate: Double

    public init(originNs: Int64, rate: Double) {
        self.originNs = originNs
        self.rate = rate
    }

    /// The reading at true time `trueNs`.
    public func moment(at trueNs: Int64) -> Moment {
        Moment(nanoseconds: originNs + Int64((Double(trueNs) * rate).rounded(.down)))
    }

    /// The true time at which `duration` of this clock's time has passed since true time `trueNs`.
    public func trueTime(after duration: Duration, from trueNs: Int64) -> Int64 {
        trueNs + Int64((Double(duration.nanosecondsValue) / rate).rounded(.up))
    }
}
