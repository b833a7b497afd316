import Flows
import HawserCore

/// The starts of a worker without the flow role (a hot-hot process with the rpc or p2p role,
/// docs/node.md "Roles"): clients' starts and the responders peers' messages ask for. Each is
/// admitted here as a flow engine admits one, then written to the node database with a row in its
/// partition's start queue (`NodeFlowStore.enqueue`) for the process serving that partition to
/// run (`QueuedStarts`), which the bus tells at once. An RPC worker answers from the flow's status
/// in the database.
struct StartQueue: ResponderStarter {
    /// Admits starts (and makes their ids, in partitions taken at random); runs no flow.
    let engine: FlowEngine
    let store: any NodeFlowStore
    let map: FlowPartitions
    /// Tells the processes serving partitions that a start was queued (the bus; nothing without one).
    let queued: @Sendable (FlowID) -> Void
    /// What the bus says of flows that settled.
    let settled: FlowSettledSignals
    /// Who serves each partition (nil without an election to read).
    let owners: PartitionOwners?
    /// Starts made while a transaction of queued starts is under way go together in the next one
    /// (a worker's many clients, or a delivery's many responders): one transaction, not one each.
    private let batches: BatchQueue<QueuedStart, FlowRecord>

    init(engine: FlowEngine, store: any NodeFlowStore, map: FlowPartitions, queued: @escaping @Sendable (FlowID) -> Void,
         settled: FlowSettledSignals, owners: PartitionOwners?, maxStartsPerCommit: Int) {
        self.engine = engine
        self.store = store
        self.map = map
        self.queued = queued
        self.settled = settled
        self.owners = owners
        batches = BatchQueue(thread: "hawser-start-queue", limit: maxStartsPerCommit, size: { _ in 1 }) { starts in
            do {
                return try await store.enqueue(starts).map { .success($0) }
            } catch {
                return starts.map { _ in .failure(error) }
            }
        }
    }

    /// Queues the start; returns its record and whether this call created the flow (false: the
    /// client request id named an existing one).
    func start(flowName: String, arguments: [UInt8], clientRequestId: String?, responder: Bool = false) async throws
        -> (record: FlowRecord, created: Bool) {
        let started = try await engine.queue(flowName: flowName, arguments: arguments, clientRequestId: clientRequestId,
                                              responder: responder) { record in
            try await batches.submit(QueuedStart(record, partition: map.partition(of: record.id)))
        }
        if started.created { queued(started.record.id) }
        return started
    }

    var registry: FlowRegistry { engine.registry }

    func startResponder(flowName: String, arguments: [UInt8], clientRequestId: String) async throws {
        _ = try await start(flowName: flowName, arguments: arguments, clientRequestId: clientRequestId, responder: true)
    }

    func hasFlow(_ id: FlowID) async throws -> Bool { try await store.record(id) != nil }

    /// The answer to a request about running flow `id` that only the process running it serves
    /// (its events, kill and resume): `standby`, naming the process its partition's election has
    /// as leader, which a client follows.
    func elsewhere(_ id: FlowID) async -> NodeAPIError {
        let partition = map.partition(of: id)
        return .partitionElsewhere(id, partition, owner: await owners?.url(of: partition))
    }

    /// The flow's record once it has ended or is parked in the hospital, or as it stands after
    /// `timeout`, read from the database (the flow runs in another process): at once, unless it was
    /// `justQueued`; then when the bus says it settled, and at the latest after a pause: 20 ms,
    /// doubling up to half a second, or a second while the bus is connected.
    func awaitEnd(_ id: FlowID, timeout: Duration, justQueued: Bool = false) async throws -> FlowRecord {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let waiter = settled.waiter(for: id)
        defer { waiter.cancel() }
        var pause = Duration.milliseconds(20)
        var read = !justQueued
        while true {
            if read {
                guard let record = try await store.record(id) else { throw FlowEngineError.notFound(id) }
                let ended = record.status.isTerminal || (record.status == .hospitalised && record.retryAt == nil)
                if ended || clock.now >= deadline { return record }
                // This process stops: the caller hears that, not a record that says `running`.
                if engine.waitsEnded || engine.isStopping { throw FlowEngineError.stopping }
            }
            read = true
            await waiter.sleep(for: min(settled.connected ? .seconds(1) : pause, deadline - clock.now))
            try Task.checkCancellation()
            pause = min(pause * 2, .milliseconds(500))
        }
    }
}
