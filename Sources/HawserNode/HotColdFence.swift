import Coordination
import Logging
import ServiceLifecycle

/// A hot-cold process's ownership (a node, or a notary): its watchdog won the election and
/// started it with the epoch (`HAWSER_FENCE_EPOCH`), which the process's fence holds for its
/// whole life. This service makes one fenced write at start-up, so the database knows the epoch
/// and refuses the former owner from then on; only then does the work begin (the node resumes
/// its unfinished flows, the notary catches up with the log) and the API serve it (before, the
/// process is taking over: not ready, its requests held or answered `standby`). The work reads
/// nothing before the claim: a read before it would miss what the former owner, still running
/// without its watchdog, committed meanwhile (a start it took), or see a flow running that it
/// has since ended. The process ends (the service group, so it exits non-zero and its watchdog
/// resigns) as soon as a write is refused, a newer owner's claim shows in the database (checked
/// every `checkInterval`: a process whose watchdog died hears of no election, and one that
/// writes nothing would otherwise serve on, ready, until its next write), or the work fails.
/// `ShardWork` is hot-warm's: one term, for the process's life.
struct HotColdFence<Work: ShardWork>: Service {
    let work: Work
    /// Whether the claim still holds (`NodeFlowStore.checkClaim`): throws `CoordinationError`
    /// once a newer owner has claimed.
    let checkClaim: @Sendable () async throws -> Void
    let checkInterval: Duration
    let serving: ServingState<Work.Term>
    let epoch: Epoch
    let logger: Logger

    /// Until the claim is made, the API says the process is taking over at `epoch`.
    init(work: Work, checkClaim: @escaping @Sendable () async throws -> Void, checkInterval: Duration = .seconds(1),
         serving: ServingState<Work.Term>, epoch: Epoch, logger: Logger) {
        self.work = work
        self.checkClaim = checkClaim
        self.checkInterval = checkInterval
        self.serving = serving
        self.epoch = epoch
        self.logger = logger
        serving.set(.takingOver("claiming the shard at epoch \(epoch)"))
    }

    func run() async throws {
        let (failures, failed) = AsyncStream.makeStream(of: String.self)
        let term = work.makeTerm { failed.yield($0) }
        do {
            try await work.claim()
            logger.info("claimed the shared database: starting", metadata: ["epoch": "\(epoch)"])
            // It serves while its work starts: a node takes starts while it resumes (as a single
            // one does), a notary's requests wait for its replica to catch up.
            serving.set(.active(term))
            try await work.start(term)
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { for await failure in failures { throw HotColdTermEnded(description: failure) } }
                    group.addTask { try await watchClaim() }
                    // Either ends the term; a graceful shutdown ends both.
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            await work.stop(term)
            throw error
        }
        await work.stop(term)
    }
}

extension HotColdFence {
    /// Returns when cancelled; throws once a newer owner's claim shows. A check the database
    /// does not answer proves nothing either way: the next one, or the next write, will tell.
    private func watchClaim() async throws {
        while true {
            do { try await Task.sleep(for: checkInterval) } catch { return }
            do {
                try await checkClaim()
            } catch let error as CoordinationError {
                throw HotColdTermEnded(description: "\(error)")
            } catch {
                logger.debug("could not check the claim", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// A hot-cold process's term ended by a refused write, a newer owner's claim or a failure of its work.
struct HotColdTermEnded: Error, CustomStringConvertible {
    let description: String
}

extension HAConfiguration {
    /// A hot-cold process's epoch, from the watchdog's environment variable; `role`: "node" or "notary".
    static func hotColdEpoch(environment: [String: String], role: String) throws -> Epoch {
        let name = fenceEpochVariable
        guard let text = environment[name] else {
            throw ConfigurationError(["ha.mode hot-cold: \(name) is not set; a hot-cold \(role) is started by `hawser watchdog`, which passes the epoch it won"])
        }
        // Digits only: `UInt64` also takes a leading `+`, which no watchdog writes.
        guard text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = UInt64(text), value > 0 else {
            throw ConfigurationError(["ha.mode hot-cold: \(name) must be a positive whole number (the epoch the watchdog won), not \"\(text.prefix(40))\""])
        }
        return Epoch(value)
    }
}
