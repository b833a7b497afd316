import HawserCore

/// Runs `body`, throwing `CoordinationError.unavailable` if it takes longer than `timeout` (the
/// body is cancelled and not waited for: `within`). Used on every call to a coordination store,
/// so that a store that hangs can never keep a leader acting past its lease.
public func withDeadline<T: Sendable>(_ timeout: Duration, _ what: String,
                                      _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    guard let value = try await within(timeout, body) else {
        throw CoordinationError.unavailable("\(what) took longer than \(timeout.millisecondsValue) ms")
    }
    return value
}
