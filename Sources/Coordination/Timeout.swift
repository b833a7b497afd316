/// Runs `body`, throwing `CoordinationError.unavailable` if it takes longer than `timeout`
/// (the body is cancelled). Used on every call to a coordination store, so that a store that
/// hangs can never keep a leader acting past its lease.
public func withDeadline<T: Sendable>(_ timeout: Duration, _ what: String,
                                      _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw CoordinationError.unavailable("\(what) took longer than \(timeout)")
        }
        return value
    }
}
