import Foundation

/// A random (version 4) UUID drawn from the system generator (`getrandom`). On Linux,
/// Foundation's `UUID()` opens, reads and closes /dev/urandom for each one: three system calls
/// with a path lookup on a path that makes one per flow.
public func randomUUID() -> UUID {
    var generator = SystemRandomNumberGenerator()
    var bytes = (generator.next() as UInt64, generator.next() as UInt64)
    return withUnsafeMutableBytes(of: &bytes) { raw in
        raw[6] = (raw[6] & 0x0F) | 0x40  // version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  // RFC 4122 variant
        return raw.load(as: UUID.self)
    }
}
