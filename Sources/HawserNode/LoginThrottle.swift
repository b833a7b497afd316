import Coordination

/// Limits password checks per client address and per user, without I/O (time is an input).
///
/// Each uncached password check takes one attempt from a token bucket of its source and one from
/// its user's; a right password gives both back, so only failures count. A bucket holds up to
/// `perSource` (or `perUser`) attempts and regains one every `refill`. When either bucket is empty
/// the check is refused before any hashing, with the time until both hold an attempt again: a
/// flood of wrong passwords then costs at most `perUser` hashes at once and one per `refill`
/// after, per user.
public struct LoginThrottle: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Attempts one source may make in quick succession.
        public var perSource: Int
        /// Attempts on one user in quick succession, from every source together.
        public var perUser: Int
        /// One attempt is regained this often, per source and per user.
        public var refill: Duration

        public init(perSource: Int, perUser: Int, refill: Duration) {
            self.perSource = perSource
            self.perUser = perUser
            self.refill = refill
        }
    }

    public enum Decision: Sendable, Equatable {
        case allowed
        /// Try again after this long.
        case refused(retryAfter: Duration)
    }

    private struct Bucket {
        var tokens: Double
        var updated: Moment
    }

    public let limits: Limits
    /// Most sources tracked; beyond it the fullest buckets (nearest to forgotten) are dropped.
    public let maxSources: Int
    private var sources: [String: Bucket] = [:]
    private var users: [String: Bucket] = [:]

    public init(limits: Limits, maxSources: Int = 10_000) {
        self.limits = limits
        self.maxSources = maxSources
    }

    /// Before a password check for `user` (nil: only the source's bucket counts) from `source`:
    /// takes an attempt from each bucket, or refuses without taking any.
    public mutating func admit(source: String, user: String?, now: Moment) -> Decision {
        var sourceBucket = refilled(sources[source], burst: limits.perSource, now: now)
        var userBucket = user.map { refilled(users[$0], burst: limits.perUser, now: now) }
        let wait = max(waitForOne(sourceBucket), userBucket.map(waitForOne) ?? .zero)
        guard wait == .zero else { return .refused(retryAfter: wait) }
        sourceBucket.tokens -= 1
        userBucket?.tokens -= 1
        sources[source] = sourceBucket
        if let user, let userBucket { users[user] = userBucket }
        if sources.count > maxSources { forgetSources(keeping: source, now: now) }
        return .allowed
    }

    /// The password was right: the attempts `admit` took are given back.
    public mutating func succeeded(source: String, user: String, now: Moment) {
        if var bucket = sources[source] {
            bucket = refilled(bucket, burst: limits.perSource, now: now)
            bucket.tokens = min(Double(limits.perSource), bucket.tokens + 1)
            sources[source] = bucket
        }
        if var bucket = users[user] {
            bucket = refilled(bucket, burst: limits.perUser, now: now)
            bucket.tokens = min(Double(limits.perUser), bucket.tokens + 1)
            users[user] = bucket
        }
    }

    /// How many sources have a bucket (for tests of the bound).
    public var trackedSources: Int { sources.count }

    /// Drops the sources whose buckets are full again (the same as never seen), then, if there
    /// are still too many, the fullest one (the one whose history matters least).
    private mutating func forgetSources(keeping kept: String, now: Moment) {
        let burst = Double(limits.perSource)
        sources = sources.filter { $0.key == kept || refilled($0.value, burst: limits.perSource, now: now).tokens < burst }
        while sources.count > maxSources,
              let fullest = sources.filter({ $0.key != kept })
                  .max(by: { refilled($0.value, burst: limits.perSource, now: now).tokens < refilled($1.value, burst: limits.perSource, now: now).tokens }) {
            sources[fullest.key] = nil
        }
    }

    private func refilled(_ bucket: Bucket?, burst: Int, now: Moment) -> Bucket {
        guard var bucket else { return Bucket(tokens: Double(burst), updated: now) }
        let gained = Double((now - bucket.updated).nanosecondsValue) / Double(limits.refill.nanosecondsValue)
        bucket.tokens = min(Double(burst), bucket.tokens + max(0, gained))
        bucket.updated = max(bucket.updated, now)
        return bucket
    }

    /// Time until the bucket holds one whole attempt.
    private func waitForOne(_ bucket: Bucket) -> Duration {
        guard bucket.tokens < 1 else { return .zero }
        return .nanoseconds(Int64(((1 - bucket.tokens) * Double(limits.refill.nanosecondsValue)).rounded(.up)))
    }
}
