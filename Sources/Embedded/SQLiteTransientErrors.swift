import GRDB
import HawserCore

/// SQLite failures that pass by themselves: a full disk (once space is freed), an I/O error of
/// the disk, a lock another connection held past the busy timeout. A flow that meets one is
/// retried with back-off (`HospitalPolicy`), not parked as if it had met a bug: a node whose disk
/// filled parked the flows whose end it was recording, for good (found from outside). Anything
/// else (a constraint, a malformed database) is no better on a second try.
extension DatabaseError: PossiblyTransientError {
    public var isTransient: Bool {
        switch resultCode {
        case .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_BUSY, .SQLITE_LOCKED: true
        default: false
        }
    }
}
