#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on a monotonic timeline, as the sans-I/O cores see time: the shells read the clock and
/// pass moments in, so the cores read none and tests drive them with plain numbers.
public struct Moment: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanoseconds: Int64
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static func < (a: Moment, b: Moment) -> Bool { a.nanoseconds < b.nanoseconds }
    public static func + (a: Moment, b: Duration) -> Moment { Moment(nanoseconds: a.nanoseconds + b.nanosecondsValue) }
    public static func - (a: Moment, b: Moment) -> Duration { .nanoseconds(a.nanoseconds - b.nanoseconds) }
    public var description: String { "\(nanoseconds)ns" }

    /// CLOCK_MONOTONIC: the same timeline for every process on the machine, so the fault tests can
    /// compare moments printed by different processes.
    public static func now() -> Moment {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Moment(nanoseconds: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }
}

extension Duration {
    /// The whole duration in nanoseconds (saturating far beyond any timeout used here).
    public var nanosecondsValue: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The whole duration in milliseconds.
    public var millisecondsValue: Int64 { nanosecondsValue / 1_000_000 }
}
