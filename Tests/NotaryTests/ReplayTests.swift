import Embedded
import Foundation
import HawserCore
import Logging
import Metrics
import Notary
import HawserTestSupport
import HawserWire
import Synchronization
import Testing
import Uniqueness

/// Determinism and recovery: replicas fed the same log agree byte for byte, and a replica
/// rebuilt from the log, or restarted part way, reaches the same state.
@Suite(.timeLimit(.minutes(10))) struct ReplayTests {
    /// Fills a log through a notary with a mix of commits, conflicts and time-window rejections.
    func fillLog(in directory: String, count: Int) async throws -> SecureHash {
        var ids = Ids(seed: 10)
        let shared = (0..<10).map { _ in ids.ref() }
        let window = TimeWindow(from: nil, until: Instant(microsecondsSinceEpoch: 1_800_000_000_000_000 + 500))
        let requests = (0..<count).map { i in
            request(ids.hash(), inputs: [ids.ref(), shared[i % 10]], references: i % 3 == 0 ? [shared[(i + 1) % 10]] : [],
                    window: i % 5 == 0 ? window : nil)
        }
        return try await NotaryHarness.with(directory: directory) { h in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (i, r) in requests.enumerated() {
                    group.addTask {
                        if i % 50 == 0 { h.clock.set(Instant(microsecondsSinceEpoch: 1_800_000_000_000_000 + Int64(i * 10))) }
                        _ = try await h.notary.notarise(r)
                    }
                }
                try await group.waitForAll()
            }
            return try await h.store.digest()
        }
    }

    /// A notary started on its data with another key had nothing to apply and served: valid
    /// requests refused 403 `invalid_signature` (final for a client), and its entries, under its
    /// key, would stop every process with the right one that shares the log. It stops at start,
    /// on the entry it applied last, which does not authenticate under its key.
    @Test func aNotaryStartedWithAnotherKeyStopsBeforeServing() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 12)
        _ = try await NotaryHarness.with(directory: dir.path) { h in try await h.notary.notarise(request(ids.hash(), inputs: [ids.ref()])) }
        let stranger = SigningKey(seed: [UInt8](repeating: 9, count: 32))!
        try await NotaryHarness.with(directory: dir.path, signer: stranger) { h in
            try await h.replica.waitUntilApplied(1)
            guard case .diverged(let found?, _) = h.replica.quorum.health else {
                Issue.record("serving: \(h.replica.quorum.health)")
                return
            }
            #expect(found.kind == .unchained && found.position == 1)
            let refused = await #expect(throws: APIError.self) {
                try await h.notary.notarise(request(ids.hash(), inputs: [ids.ref()], notary: stranger.publicKey))
            }
            #expect(refused?.code == .logDiverged)
            #expect(try await h.log.lastPosition() == 1, "nothing appended under the other key")
        }
        // With its own key again it serves.
        try await NotaryHarness.with(directory: dir.path) { h in
            let answer = try await h.notary.notarise(request(ids.hash(), inputs: [ids.ref()]))
            #expect(answer.outcome == .committed)
        }
    }

    /// A replica whose log ends before what it applied (the log file deleted, the store kept)
    /// stops signing at start, and says so at once: it said ready until its first request was
    /// refused `log_diverged` (found from outside).
    @Test func aReplicaWhoseLogLostEntriesSaysSoAtStart() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 13)
        _ = try await NotaryHarness.with(directory: dir.path) { h in try await h.notary.notarise(request(ids.hash(), inputs: [ids.ref()])) }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir.path + "/log.sqlite" + suffix) }
        try await NotaryHarness.with(directory: dir.path) { h in
            try await eventually("the replica started") { h.replica.quorum.started }
            guard case .diverged(let found?, _) = h.replica.quorum.health else {
                Issue.record("ready with a log that lost an entry it applied: \(h.replica.quorum.health)")
                return
            }
            #expect(found.kind == .truncated && found.position == 0 && found.claimedPosition == 1, "\(found)")
            #expect(try await h.log.lastPosition() == 0, "nothing appended")
        }
    }

    /// Applies `log` to a new store at `path` with a given batch size and returns its digest.
    func replay(_ log: SQLiteLog, into path: String, entriesPerApply: Int, upTo end: UInt64? = nil) async throws -> SecureHash {
        let store = try SQLiteNotaryStore(path: path)
        var limits = NotaryLimits()
        limits.maxEntriesPerApply = entriesPerApply
        let replica = NotaryAssembly(name: "O=Test Notary", signer: notaryKey, authorisedParties: parties, limits: limits,
                                     log: log, store: store, metrics: NotaryMetrics(factory: NOOPMetricsHandler.instance),
                                     logger: quietLogger).replica
        let target = try await log.lastPosition()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await replica.run() }
            try await replica.waitUntilApplied(end ?? target)
            group.cancelAll()
        }
        return try await store.digest()
    }

    @Test func replicasFedTheSameLogReachTheSameDigestWhateverTheirBatching() async throws {
        let dir = try TemporaryDirectory()
        let original = try await fillLog(in: dir.path, count: 300)
        let log = try SQLiteLog(path: dir.path + "/log.sqlite")
        #expect(try await replay(log, into: dir.path + "/one.sqlite", entriesPerApply: 1) == original)
        #expect(try await replay(log, into: dir.path + "/many.sqlite", entriesPerApply: 1000) == original)
    }

    @Test func aLostStoreIsRebuiltAndARestartedReplicaResumesWhereItStopped() async throws {
        let dir = try TemporaryDirectory()
        let original = try await fillLog(in: dir.path, count: 200)
        let log = try SQLiteLog(path: dir.path + "/log.sqlite")
        let end = try await log.lastPosition()
        let path = dir.path + "/rebuilt.sqlite"
        _ = try await replay(log, into: path, entriesPerApply: 3, upTo: end / 2)
        // Re-applying an entry would spend a state twice and fail the store's primary key.
        #expect(try await replay(log, into: path, entriesPerApply: 3) == original)
        try FileManager.default.removeItem(atPath: path)
        #expect(try await replay(log, into: path, entriesPerApply: 7) == original)
    }
}

/// A store that fails its first `failures` applies (a full disk), then writes.
final class FailingStore: NotaryStore, Sendable {
    let base: any NotaryStore
    let failures = Mutex(0)

    init(_ base: any NotaryStore, failing count: Int) {
        self.base = base
        failures.withLock { $0 = count }
    }

    struct DiskFull: Error {}

    func apply(refs: [StateRef], txIds: [SecureHash],
               decide: @escaping @Sendable (UniquenessView) -> AppliedBatch) async throws -> AppliedBatch {
        let fail = failures.withLock { left -> Bool in
            defer { left = max(0, left - 1) }
            return left > 0
        }
        if fail { throw DiskFull() }
        return try await base.apply(refs: refs, txIds: txIds, decide: decide)
    }

    func head() async throws -> ChainHead { try await base.head() }
    func outcome(of txId: SecureHash) async throws -> NotarisationOutcome? { try await base.outcome(of: txId) }
    func digest() async throws -> SecureHash { try await base.digest() }
}

extension ReplayTests {
    /// Runs `body` with a notary on `log` and `store` whose requests wait up to a minute.
    func withPatientNotary(log: any ReplicatedLog, store: any NotaryStore,
                           _ body: @escaping @Sendable (NotaryAssembly) async throws -> Void) async throws {
        var limits = NotaryLimits()
        limits.requestTimeout = .seconds(60)
        let assembly = NotaryAssembly(name: "O=Test Notary", signer: notaryKey, authorisedParties: parties, limits: limits,
                                      log: log, store: store, appendTimeout: .seconds(60),
                                      metrics: NotaryMetrics(factory: NOOPMetricsHandler.instance), logger: quietLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await assembly.replica.run() }
            group.addTask { try await assembly.appender.run() }
            defer { group.cancelAll() }
            try await body(assembly)
        }
    }

    /// A store that cannot commit for a while (a full disk) delays answers; it no longer stops
    /// the replica, which took the whole node down with it (found from outside: `SQLite error 13:
    /// database or disk is full`, exit 1). The same entries are applied once the store writes.
    @Test func aStoreThatCannotWriteForAWhileDelaysAnswersAndStopsNothing() async throws {
        let dir = try TemporaryDirectory()
        let store = FailingStore(try SQLiteNotaryStore(path: dir.path + "/notary.sqlite"), failing: 3)
        var ids = Ids(seed: 41)
        let state = ids.ref()
        let (first, second) = (request(ids.hash(), inputs: [state]), request(ids.hash(), inputs: [state]))
        try await withPatientNotary(log: try SQLiteLog(path: dir.path + "/log.sqlite"), store: store) { assembly in
            #expect(try await assembly.notary.notarise(first).outcome == .committed)
            #expect(store.failures.withLock { $0 } == 0, "the store failed three times first")
            let again = try await assembly.notary.notarise(second)
            guard case .conflict = again.outcome else {
                Issue.record("the state was not recorded spent: \(again.outcome)")
                return
            }
        }
    }

    /// While its store cannot apply, a replica says so (`/health/ready` answers `not_ready` with
    /// it), and stops saying so once it applies again. It said `ready` while every request timed
    /// out.
    @Test func aReplicaWhoseStoreCannotApplySaysSoUntilItApplies() async throws {
        let dir = try TemporaryDirectory()
        let store = FailingStore(try SQLiteNotaryStore(path: dir.path + "/notary.sqlite"), failing: 1_000_000)
        var ids = Ids(seed: 42)
        let tx = request(ids.hash(), inputs: [ids.ref()])
        try await withPatientNotary(log: try SQLiteLog(path: dir.path + "/log.sqlite"), store: store) { assembly in
            #expect(assembly.replica.storeProblem == nil)
            let answer = Task { try await assembly.notary.notarise(tx).outcome }
            try await eventually("the replica says its store fails") {
                assembly.replica.storeProblem?.contains("DiskFull") == true
            }
            store.failures.withLock { $0 = 0 }
            #expect(try await answer.value == .committed)
            // The answer goes out within the apply; the problem is cleared once the apply returns.
            try await eventually("the replica says its store applies again") { assembly.replica.storeProblem == nil }
        }
    }

    /// A log that refuses appends (its disk full) makes readiness say so until it takes one: the
    /// notary said `ready` while every request timed out (found from outside).
    @Test func aNotaryWhoseLogRefusesAppendsSaysSoUntilItTakesOne() async throws {
        let dir = try TemporaryDirectory()
        let log = RefusingLog(try SQLiteLog(path: dir.path + "/log.sqlite"))
        var ids = Ids(seed: 44)
        let (first, tx) = (request(ids.hash(), inputs: [ids.ref()]), request(ids.hash(), inputs: [ids.ref()]))
        try await withPatientNotary(log: log, store: try SQLiteNotaryStore(path: dir.path + "/notary.sqlite")) { assembly in
            #expect(try await assembly.notary.notarise(first).outcome == .committed)
            #expect(assembly.quorum.appendProblem == nil)
            log.refusing.withLock { $0 = true }
            let answer = Task { try await assembly.notary.notarise(tx).outcome }
            try await eventually("readiness says the log refuses appends") { assembly.quorum.appendProblem?.contains("DiskFull") == true }
            log.refusing.withLock { $0 = false }
            #expect(try await answer.value == .committed, "the appender tried again within its time-out")
            #expect(assembly.quorum.appendProblem == nil)
        }
    }

    /// A notary on PostgreSQL exited when its database went away while it served: the replica's
    /// read of the log failed with `database_unavailable` and ended its run (found from outside;
    /// the docs promise an exit only in hot-cold). A transient read failure is tried again.
    @Test func aLogThatCannotBeReadForAWhileDelaysAnswersAndStopsNothing() async throws {
        let dir = try TemporaryDirectory()
        let log = FlakyReadLog(try SQLiteLog(path: dir.path + "/log.sqlite"), failing: 3)
        var ids = Ids(seed: 43)
        let tx = request(ids.hash(), inputs: [ids.ref()])
        try await withPatientNotary(log: log, store: try SQLiteNotaryStore(path: dir.path + "/notary.sqlite")) { assembly in
            let outcome = try await assembly.notary.notarise(tx).outcome
            #expect(outcome == .committed)
            #expect(log.failures.withLock { $0 } == 0, "the reads failed three times first")
        }
    }
}

/// A log whose reads fail with a transient error (its database away) a number of times first.
final class FlakyReadLog: ReplicatedLog, Sendable {
    let base: any ReplicatedLog
    let failures = Mutex(0)

    struct DatabaseAway: PossiblyTransientError { var isTransient: Bool { true } }

    init(_ base: any ReplicatedLog, failing count: Int) {
        self.base = base
        failures.withLock { $0 = count }
    }

    func append(_ payload: [UInt8], after last: UInt64) async throws { try await base.append(payload, after: last) }
    func read(after position: UInt64, limit: Int) async throws -> [LogEntry] {
        let fail = failures.withLock { left -> Bool in
            defer { left = max(0, left - 1) }
            return left > 0
        }
        if fail { throw DatabaseAway() }
        return try await base.read(after: position, limit: limit)
    }
    func lastPosition(applied: UInt64) async throws -> UInt64 { try await base.lastPosition(applied: applied) }
    func entry(at position: UInt64) async throws -> LogEntry? { try await base.entry(at: position) }
}


/// A log whose appends fail (its disk full) while `refusing`.
final class RefusingLog: ReplicatedLog, Sendable {
    let base: any ReplicatedLog
    let refusing = Mutex(false)

    struct DiskFull: Error {}

    init(_ base: any ReplicatedLog) { self.base = base }

    func append(_ payload: [UInt8], after last: UInt64) async throws {
        if refusing.withLock({ $0 }) { throw DiskFull() }
        try await base.append(payload, after: last)
    }
    func read(after position: UInt64, limit: Int) async throws -> [LogEntry] { try await base.read(after: position, limit: limit) }
    func lastPosition(applied: UInt64) async throws -> UInt64 { try await base.lastPosition(applied: applied) }
    func entry(at position: UInt64) async throws -> LogEntry? { try await base.entry(at: position) }
}
