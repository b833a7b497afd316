import Embedded
import Foundation
import HawserCore
import HawserTestSupport
import Logging
import Metrics
import Notary
import Synchronization

/// A clock the test sets by hand.
final class ManualClock: Sendable {
    private let now = Mutex(Instant(microsecondsSinceEpoch: 1_800_000_000_000_000))
    func read() -> Instant { now.withLock { $0 } }
    func set(_ instant: Instant) { now.withLock { $0 = instant } }
}

let notaryKey = SigningKey(seed: [UInt8](repeating: 7, count: 32))!
let alice = SigningKey(seed: [UInt8](repeating: 1, count: 32))!
let bob = SigningKey(seed: [UInt8](repeating: 2, count: 32))!
let parties = [Party(name: "O=Alice", publicKey: alice.publicKey), Party(name: "O=Bob", publicKey: bob.publicKey)]

func request(_ txId: SecureHash, inputs: [StateRef], references: [StateRef] = [], window: TimeWindow? = nil,
             by key: SigningKey = alice, name: String = "O=Alice", notary: PublicKey = notaryKey.publicKey) -> NotarisationRequest {
    .signed(txId: txId, inputs: inputs, references: references, timeWindow: window, requesterName: name, key: key,
            notary: notary)
}

/// A complete embedded notary in a temporary directory, its services running for the duration of `body`.
struct NotaryHarness {
    let notary: Notary
    let replica: Replica
    let store: SQLiteNotaryStore
    let log: SQLiteLog
    let clock: ManualClock

    static func with<T: Sendable>(directory: String, clock: ManualClock = ManualClock(), limits: NotaryLimits = NotaryLimits(),
                                  signer: SigningKey = notaryKey, _ body: (NotaryHarness) async throws -> T) async throws -> T {
        let log = try SQLiteLog(path: directory + "/log.sqlite")
        let store = try SQLiteNotaryStore(path: directory + "/notary.sqlite")
        let assembly = NotaryAssembly(name: "O=Test Notary", signer: signer, authorisedParties: parties, limits: limits,
                                      log: log, store: store, metrics: NotaryMetrics(factory: NOOPMetricsHandler.instance),
                                      logger: quietLogger, clock: clock.read)
        let notary = assembly.notary, replica = assembly.replica, appender = assembly.appender
        let harness = NotaryHarness(notary: notary, replica: replica, store: store, log: log, clock: clock)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await replica.run() }
            group.addTask { try await appender.run() }
            defer { group.cancelAll() }
            return try await body(harness)
        }
    }

    /// Waits until the replica has applied everything in the log.
    func caughtUp() async throws {
        try await replica.waitUntilApplied(try await log.lastPosition())
    }
}

/// Logs only warnings and worse, so test output shows what matters.
let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    return logger
}()
