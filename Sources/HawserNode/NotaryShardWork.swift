import Coordination
import HawserCore
import Logging
import Notary
import ServiceLifecycle
import Synchronization
import Uniqueness

/// The notary's parts for one term of a hot-warm notary (or for the whole life of a single one):
/// front, appender and replica on the shared log and store. In hot-warm the term runs them while
/// it owns the shard, in a task of its own that `stop` cancels and awaits.
public final class NotaryTerm: Sendable {
    let assembly: NotaryAssembly
    public var notary: Notary { assembly.notary }
    public var replica: Replica { assembly.replica }
    /// Told when the running parts fail (not when they are stopped): the term must end.
    private let failed: (@Sendable (String) -> Void)?
    /// The task running the parts, and whether `stop` came (perhaps before `start` did: then the
    /// parts never run).
    private let running = Mutex<(task: Task<Void, Never>?, stopped: Bool)>((nil, false))

    init(_ assembly: NotaryAssembly, failed: (@Sendable (String) -> Void)? = nil) {
        self.assembly = assembly
        self.failed = failed
    }

    /// Runs the parts and returns once the replica has applied the log up to `logEnd` (the log's
    /// end after the claiming write: everything the former owner appended). Throws if the parts
    /// fail first.
    func start(catchingUpTo logEnd: UInt64) async throws {
        let (started, report) = AsyncStream.makeStream(of: Result<Void, any Error>.self)
        let (services, applied, failed) = (assembly.services, assembly.quorum.appliedSignal, self.failed)
        let launched = running.withLock { running -> Bool in
            guard !running.stopped else { return false }
            running.task = Task {
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for service in services { group.addTask { try await service.run() } }
                        group.addTask {
                            if logEnd > 0 { try await applied.wait(beyond: logEnd - 1) }
                            report.yield(.success(()))
                        }
                        // The services return only when cancelled; the first to throw ends the term.
                        while try await group.next() != nil {}
                    }
                } catch where !Task.isCancelled {
                    report.yield(.failure(error))
                    failed?("the notary's replica or appender failed: \(error)")
                } catch {}
                report.finish()
            }
            return true
        }
        guard launched else { throw CancellationError() }
        for await result in started { return try result.get() }
        throw CancellationError()
    }

    /// Stops the parts and returns once they stopped; requests waiting in the appender are
    /// answered `shutting_down` (retryable: the client asks the next process).
    func stop() async {
        let task = running.withLock { running in
            running.stopped = true
            return running.task
        }
        task?.cancel()
        await task?.value
    }
}

/// The notary's work in a hot-warm term (`ShardService`): a new `NotaryTerm` on the shared log
/// and store, fenced by the shard's fence, which catches up from the shared log and then serves.
struct NotaryShardWork: ShardWork {
    let log: any ReplicatedLog
    let store: any NotaryStore
    let claimWrite: @Sendable () async throws -> Void
    /// Makes a term's parts on the log and store given (which report refused writes).
    let makeParts: @Sendable (any ReplicatedLog, any NotaryStore, @escaping @Sendable (String) -> Void) -> NotaryTerm

    func claim() async throws { try await claimWrite() }

    func makeTerm(failed: @escaping @Sendable (String) -> Void) -> NotaryTerm {
        let refused: @Sendable (CoordinationError) -> Void = { failed($0.description) }
        return makeParts(FencedNotaryLog(base: log, refused: refused), FencedNotaryStore(base: store, refused: refused), failed)
    }

    func start(_ term: NotaryTerm) async throws {
        try await term.start(catchingUpTo: try await log.lastPosition())
    }

    func stop(_ term: NotaryTerm) async { await term.stop() }
}

/// The shared log of a hot-warm notary: every call goes to `base`, and an append the fencing
/// check refused is reported to `refused` before the error goes on, so that the term stops at
/// once instead of the appender retrying until its deadline.
struct FencedNotaryLog: ReplicatedLog {
    let base: any ReplicatedLog
    let refused: @Sendable (CoordinationError) -> Void

    func append(_ payload: [UInt8], after last: UInt64) async throws {
        do {
            try await base.append(payload, after: last)
        } catch let error as CoordinationError where error.isFencingRefusal {
            refused(error)
            throw error
        }
    }

    func read(after position: UInt64, limit: Int) async throws -> [LogEntry] { try await base.read(after: position, limit: limit) }
    func lastPosition(applied: UInt64) async throws -> UInt64 { try await base.lastPosition(applied: applied) }
    func entry(at position: UInt64) async throws -> LogEntry? { try await base.entry(at: position) }
}

/// The shared store of a hot-warm notary: as `FencedNotaryLog`, for applied batches.
struct FencedNotaryStore: NotaryStore {
    let base: any NotaryStore
    let refused: @Sendable (CoordinationError) -> Void

    func apply(refs: [StateRef], txIds: [SecureHash],
               decide: @escaping @Sendable (UniquenessView) -> AppliedBatch) async throws -> AppliedBatch {
        do {
            return try await base.apply(refs: refs, txIds: txIds, decide: decide)
        } catch let error as CoordinationError where error.isFencingRefusal {
            refused(error)
            throw error
        }
    }

    func head() async throws -> ChainHead { try await base.head() }
    func outcome(of txId: SecureHash) async throws -> NotarisationOutcome? { try await base.outcome(of: txId) }
    func digest() async throws -> SecureHash { try await base.digest() }
}
