import Coordination
import Flows
import HawserCore
import Logging
import ServiceLifecycle
import Synchronization

/// Runs the flow starts RPC workers queued (`NodeFlowStore.enqueue`, docs/node.md "Roles") on the
/// engines of the partitions this process serves: the flows the bus names at once (`ring`, read
/// by their ids), and every `interval` whatever the queue holds (a scan of it: an event can be
/// lost); hands each partition's starts to its engine (`FlowEngine.adopt`) and drops those the
/// engines took from the queue under their partitions' fences.
/// A partition changing hands loses nothing: a start dropped from the queue is a running flow in
/// the database, which the partition's next owner resumes as it resumes every unfinished flow.
final class QueuedStarts: Service, Sendable {
    private let store: any NodeFlowStore
    private let engines: FlowEngines
    /// Each partition's fence, which a removal from its queue proves.
    private let fences: [WriteFence]
    private let interval: Duration
    private let logger: Logger
    private let wakeup = Wakeup()
    /// Flows the bus named since the last pass, at most `maxNamed`: more are dropped, and found
    /// by the next scan (a flood of events naming made-up flows grew a process without bound).
    private let named = Mutex<[FlowID]>([])
    static let maxNamed = 1_000
    /// Starts read in one pass; a full page is followed at once by the next.
    static let page = 1_000

    init(store: any NodeFlowStore, engines: FlowEngines, fences: [WriteFence], interval: Duration, logger: Logger) {
        self.store = store
        self.engines = engines
        self.fences = fences
        self.interval = interval
        self.logger = logger
    }

    /// These flows' starts were queued: run them now.
    func ring(_ ids: [FlowID]) {
        named.withLock { named in named += ids.prefix(max(0, Self.maxNamed - named.count)) }
        wakeup.wake()
    }

    /// How many named flows wait for the next pass.
    var namedWaiting: Int { named.withLock { $0.count } }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var said: String?
            let clock = ContinuousClock()
            var scanned = clock.now
            while !Task.isCancelled {
                do {
                    let ids = self.named.withLock { named in
                        defer { named = [] }
                        return named
                    }
                    // Named flows a pass fails to run are found by the next scan.
                    if !ids.isEmpty { try await self.pass(named: ids) }
                    let now = clock.now
                    if now - scanned >= self.interval {
                        scanned = now  // also when the scan fails: tried again after the interval
                        if try await self.pass() {
                            scanned = now - self.interval  // a full page is followed at once by the next
                            continue
                        }
                    }
                    said = nil
                } catch is CancellationError {
                    return
                } catch {
                    // Said once while it lasts: a database down is reported where the node reports it.
                    if said != "\(error)" { self.logger.warning("could not run the queued flow starts", metadata: ["error": "\(error)"]) }
                    said = "\(error)"
                }
                await self.wakeup.sleep(for: self.interval - (clock.now - scanned))
            }
        }
    }

    /// The partitions serving here, with their engines.
    private var serving: [Int: FlowEngine] {
        var serving = [Int: FlowEngine]()
        for (k, state) in engines.partitions.enumerated() {
            if case .active(let engine) = state.current { serving[k] = engine }
        }
        return serving
    }

    /// The flows of `named` in partitions serving here and still queued, read at once, and run.
    private func pass(named: [FlowID]) async throws {
        guard let map = engines.map else { return }
        let serving = serving
        let ids = Set(named).filter { serving[map.partition(of: $0)] != nil }
        try await run(try await store.queued(Array(ids)), serving: serving, map: map)
    }

    /// One scan of the queue for the partitions serving here; true if it read a full page and
    /// took some of it (an engine still resuming takes none: wait for the next pass).
    func pass() async throws -> Bool {
        guard let map = engines.map else { return false }
        let serving = serving
        guard !serving.isEmpty else { return false }
        let queued = try await store.queued(in: serving.keys.sorted(), limit: Self.page)
        return try await run(queued, serving: serving, map: map) && queued.count == Self.page
    }

    /// Hands each partition's queued flows to its engine and drops those taken from the queue;
    /// true if any was taken.
    @discardableResult
    private func run(_ queued: [FlowRecord], serving: [Int: FlowEngine], map: FlowPartitions) async throws -> Bool {
        var taken = [FlowID](), proving = [CommitFence]()
        for (k, records) in Dictionary(grouping: queued, by: { map.partition(of: $0.id) }) {
            // A partition given up since it was read: its new owner takes them.
            guard let engine = serving[k], let epoch = try? fences[k].epochForWrite() else { continue }
            let adopted = engine.adopt(records)
            if adopted.isEmpty { continue }
            taken += adopted
            proving.append(CommitFence(resource: fences[k].resource, epoch: epoch.value))
        }
        // One transaction for every partition's: a deposed owner's removal is refused whole.
        try await store.dequeue(taken, proving: proving)
        return !taken.isEmpty
    }
}
