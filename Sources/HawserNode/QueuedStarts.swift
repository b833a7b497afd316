import Flows
import HawserCore
import Logging
import ServiceLifecycle

/// Runs the flow starts RPC workers queued (`NodeFlowStore.enqueue`, docs/node.md "Roles") on the
/// engines of the partitions this process serves: it reads the queue every `interval`, and at once
/// when the bus says a start was queued (`ring`); hands each partition's starts to its engine
/// (`FlowEngine.adopt`) and drops those the engine took from the queue under the partition's fence.
/// A partition changing hands loses nothing: a start dropped from the queue is a running flow in
/// the database, which the partition's next owner resumes as it resumes every unfinished flow.
final class QueuedStarts: Service, Sendable {
    private let store: any NodeFlowStore
    private let engines: FlowEngines
    /// Each partition's store, fenced by the partition's fence (for `dequeue`).
    private let fenced: [any NodeFlowStore]
    private let interval: Duration
    private let logger: Logger
    private let wakeup = Wakeup()
    /// Starts read in one pass; a full page is followed at once by the next.
    static let page = 1_000

    init(store: any NodeFlowStore, engines: FlowEngines, fenced: [any NodeFlowStore], interval: Duration, logger: Logger) {
        self.store = store
        self.engines = engines
        self.fenced = fenced
        self.interval = interval
        self.logger = logger
    }

    /// Starts were queued: read the queue now.
    func ring() { wakeup.wake() }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var said: String?
            while !Task.isCancelled {
                do {
                    let full = try await self.pass()
                    said = nil
                    if full { continue }
                } catch is CancellationError {
                    return
                } catch {
                    // Said once while it lasts: a database down is reported where the node reports it.
                    if said != "\(error)" { self.logger.warning("could not run the queued flow starts", metadata: ["error": "\(error)"]) }
                    said = "\(error)"
                }
                await self.wakeup.sleep(for: self.interval)
            }
        }
    }

    /// One read of the queue for the partitions serving here; true if it read a full page and
    /// took some of it (an engine still resuming takes none: wait for the next pass).
    func pass() async throws -> Bool {
        guard let map = engines.map else { return false }
        var serving = [Int: FlowEngine]()
        for (k, state) in engines.partitions.enumerated() {
            if case .active(let engine) = state.current { serving[k] = engine }
        }
        guard !serving.isEmpty else { return false }
        let queued = try await store.queued(in: serving.keys.sorted(), limit: Self.page)
        var took = false
        for (k, ids) in Dictionary(grouping: queued, by: { map.partition(of: $0) }) {
            guard let engine = serving[k] else { continue }
            let taken = try await engine.adopt(ids)
            try await fenced[k].dequeue(taken)
            took = took || !taken.isEmpty
        }
        return queued.count == Self.page && took
    }
}
