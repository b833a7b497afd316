import Foundation

// UUIDs drawn from the system generator (`getrandom`). On Linux, Foundation's `UUID()` opens,
// reads and closes /dev/urandom for each one: three system calls and a path lookup, on paths
// that make one per flow.

/// A random (version 4) UUID.
public func randomUUID() -> UUID {
    var generator = SystemRandomNumberGenerator()
    return uuid(version: 4, high: generator.next(), low: generator.next())
}

/// A time-ordered (version 7, RFC 9562) UUID: the Unix time in milliseconds, then random bits.
/// As a database key, ids made close in time sort close together, so a batch of new rows
/// touches a few index pages instead of one random page each.
public func timeOrderedUUID(now: Date = Date()) -> UUID {
    var generator = SystemRandomNumberGenerator()
    let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000)) & 0xFFFF_FFFF_FFFF
    let random: UInt64 = generator.next()
    let high = (milliseconds << 16) | (random & 0xFFFF)
    return uuid(version: 7, high: high, low: generator.next())
}

/// The UUID with `high` then `low` as its big-endian bytes, version and RFC 4122 variant set.
private func uuid(version: UInt8, high: UInt64, low: UInt64) -> UUID {
    var bytes = (high.bigEndian, low.bigEndian)
    return withUnsafeMutableBytes(of: &bytes) { raw in
        raw[6] = (raw[6] & 0x0F) | (version << 4)
        raw[8] = (raw[8] & 0x3F) | 0x80
        return raw.load(as: UUID.self)
    }
}
