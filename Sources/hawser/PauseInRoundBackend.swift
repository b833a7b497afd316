import Coordination
import Foundation
import Logging
import Synchronization

/// The test hook of `hawser election run` (docs/coordination.md, "Commands"): with
/// `HAWSER_TEST_PAUSE_IN_LEASE_ROUND=FILE` set, the first lease round after FILE appears that
/// renews this candidate's lease prints a `test-pause` event and stops the process (SIGSTOP)
/// inside the round's transaction, with the lease row locked: the worst moment for a pause, which
/// a test cannot hit reliably from outside. Once only; SIGCONT resumes the process, which then
/// finishes the round. Not for production.
final class PauseInRoundBackend: LeaseBackend {
    static let variable = "HAWSER_TEST_PAUSE_IN_LEASE_ROUND"

    private let backend: any LeaseBackend
    private let candidate: String
    private let trigger: String
    private let paused = Mutex(false)

    init(_ backend: any LeaseBackend, candidate: String, trigger: String) {
        self.backend = backend
        self.candidate = candidate
        self.trigger = trigger
    }

    /// The election `hawser election run` stands in: with the hook's variable set (lease back ends
    /// only), a `LeaseElection` on this backend; otherwise the one the options describe.
    static func election(_ store: CoordinationOptions, candidate: Candidate, health: HealthChecks, logger: Logger) throws -> any Election {
        guard let trigger = ProcessInfo.processInfo.environment[variable], !trigger.isEmpty else {
            return try store.makeElection(candidate: candidate, health: health, logger: logger)
        }
        guard store.zookeeper == nil else { throw CLIError("\(variable) works with a lease back end (--postgres, --sqlite) only") }
        return try LeaseElection(candidate: candidate, backend: PauseInRoundBackend(try store.leaseBackend(), candidate: candidate.id, trigger: trigger),
                                 configuration: store.leaseConfiguration(), health: health, logger: logger)
    }

    func prepare() async throws { try await backend.prepare() }
    func close() async { await backend.close() }

    func transaction<T: Sendable>(election: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T)) async throws -> T {
        try await backend.transaction(election: election) { [self] state in
            let (writes, result) = try body(state)
            let renewal = state.lease.holder == candidate && state.lease.expiresMs > state.nowMs && writes.lease?.holder == candidate
            if renewal, FileManager.default.fileExists(atPath: trigger), paused.withLock({ done in defer { done = true }; return !done }) {
                emitEvent(["event": "test-pause", "id": candidate])
                raise(SIGSTOP)
            }
            return (writes, result)
        }
    }
}
