import Foundation
import HawserCore

extension Instant {
    /// This machine's wall clock. Only the appender reads it, to stamp log entries; nothing on the
    /// apply path does (DESIGN.md rule 2).
    public static func now() -> Instant {
        Instant(microsecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000_000).rounded()))
    }
}
