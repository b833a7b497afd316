/// A small seedable generator (SplitMix64) so that server shuffling and jitter are reproducible
/// in tests.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A value in `0..<1`.
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// When and how often to reconnect.
public struct ReconnectPolicy: Sendable, Hashable {
    /// Reconnect at all after losing an established connection.
    public var enabled: Bool
    /// The delay after the first full pass over the server list failed.
    public var initialDelay: Duration
    /// The largest delay between attempts.
    public var maxDelay: Duration
    /// Up to this fraction of the delay is added at random, to spread out clients.
    public var jitter: Double
    /// Consecutive failed attempts before the client gives up and closes; `nil` retries forever.
    public var maxAttempts: Int?

    public init(
        enabled: Bool = true, initialDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(2),
        jitter: Double = 0.25, maxAttempts: Int? = nil
    ) {
        self.enabled = enabled
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
        self.maxAttempts = maxAttempts
    }

    /// The delay before the next attempt after `failures` consecutive failures with `servers` known
    /// servers. Each server is tried once without delay; then the delay doubles per full pass, capped
    /// at `maxDelay`, plus `random * jitter` of itself (`random` in `0..<1`).
    func delay(afterFailures failures: Int, servers: Int, random: Double) -> Duration {
        let pass = failures / max(servers, 1)
        if pass == 0 { return .zero }
        var base = initialDelay
        var doublings = pass - 1
        while doublings > 0 && base < maxDelay {
            base = base * 2
            doublings -= 1
        }
        if base > maxDelay { base = maxDelay }
        return base + base * (jitter * random)
    }
}

/// The servers the client knows: the configured ones plus those the cluster announced.
struct ServerPool: Sendable {
    struct Entry: Sendable, Hashable {
        var address: ServerAddress
        /// Learned from `connect_urls` rather than configured.
        var discovered: Bool
        var failedAttempts: Int
    }

    private(set) var entries: [Entry]
    private var lastUsedKey: String?

    init<G: RandomNumberGenerator>(servers: [ServerAddress], randomize: Bool, using rng: inout G) {
        var seen = Set<String>()
        var list: [Entry] = []
        for s in servers where seen.insert(s.key).inserted {
            list.append(Entry(address: s, discovered: false, failedAttempts: 0))
        }
        if randomize { list.shuffle(using: &rng) }
        entries = list
    }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    /// The next server to try; it moves to the back of the rotation.
    mutating func next() -> ServerAddress? {
        guard !entries.isEmpty else { return nil }
        let first = entries.removeFirst()
        entries.append(first)
        lastUsedKey = first.address.key
        return first.address
    }

    mutating func markFailed(_ address: ServerAddress) {
        if let i = entries.firstIndex(where: { $0.address.key == address.key }) { entries[i].failedAttempts += 1 }
    }

    mutating func markConnected(_ address: ServerAddress) {
        if let i = entries.firstIndex(where: { $0.address.key == address.key }) { entries[i].failedAttempts = 0 }
    }

    /// Adds servers announced in `INFO.connect_urls` (`host:port`), inheriting TLS from `template`.
    /// Returns the newly added addresses.
    @discardableResult
    mutating func addDiscovered<G: RandomNumberGenerator>(
        _ urls: [String], template: ServerAddress?, randomize: Bool, using rng: inout G
    ) -> [ServerAddress] {
        var added: [ServerAddress] = []
        var seen = Set(entries.map(\.address.key))
        for url in urls {
            guard var address = try? ServerAddress(url) else { continue }
            if let template, !url.contains("://") { address.requiresTLS = template.requiresTLS }
            if seen.insert(address.key).inserted {
                added.append(address)
            }
        }
        if randomize { added.shuffle(using: &rng) }
        // `next()` moves the server in use to the back; keep it there so a lost server is retried last.
        let newEntries = added.map { Entry(address: $0, discovered: true, failedAttempts: 0) }
        if let last = entries.last, last.address.key == lastUsedKey {
            entries.insert(contentsOf: newEntries, at: entries.count - 1)
        } else {
            entries.append(contentsOf: newEntries)
        }
        return added
    }
}
