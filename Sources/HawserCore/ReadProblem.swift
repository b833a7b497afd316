/// Why `read` failed, or did not answer within `bound`; nil if it answered. Readiness asks a
/// database for one cheap read this way: a database that cannot be read (corrupt, or its server
/// gone) must not be reported ready, and a check must not hang on one that stopped answering.
public func readProblem(within bound: Duration = .seconds(2), _ read: @escaping @Sendable () async throws -> Void) async -> String? {
    do {
        return try await within(bound, read) == nil ? "no answer within \(bound)" : nil
    } catch {
        return "\(error)"
    }
}
