#if canImport(Glibc)
import Glibc
#endif

/// The process's open-file limit, and whether its listeners' connection caps fit under it. A
/// process whose connections take its last file descriptor can open no database file, log segment
/// or outbound connection either, so it starts only if every cap fits with room to spare.
public enum OpenFileLimit {
    /// The files a process keeps for itself beside its listeners' connections: its database
    /// files and journals, its pools to PostgreSQL, its connections to NATS, ZooKeeper, peers and
    /// the notary.
    static let reserve = 1_024

    /// A listener's cap: the option that sets it and its value.
    public typealias Cap = (option: String, value: Int)

    /// Raises the soft limit to the hard one (as Go's runtime does; nothing here uses select(2),
    /// whose sets end at 1,024), then returns the sentence that refuses start-up if `caps` and the
    /// reserve do not fit under it; nil if they do.
    public static func raise(toFit caps: [Cap]) -> String? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            // The hard limit may be "unlimited", which the kernel refuses as a soft one: keep the old.
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        // rlim_t.max: RLIM_INFINITY, all ones (Glibc's macro does not import).
        return problem(caps, limit: limit.rlim_cur == rlim_t.max ? Int.max : Int(clamping: limit.rlim_cur))
    }

    /// The sentence that refuses start-up if `caps` and the reserve exceed `limit`; nil if not.
    static func problem(_ caps: [Cap], limit: Int) -> String? {
        let needed = caps.reduce(reserve) { $0 + $1.value }
        guard needed > limit else { return nil }
        let named = caps.map { "\($0.option) (\($0.value))" }.joined(separator: " + ")
        return "\(named) + \(reserve) files for the process's own use need \(needed) open files, but this process may open only \(limit) "
            + "(`ulimit -n`, raised to the hard limit `ulimit -Hn` where the system allows): lower the caps or raise the limit "
            + "(LimitNOFILE= in a systemd unit, `ulimit -Hn` as root in a shell)"
    }

    private static var resource: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }
}
