import Flows
import HawserCore

/// An RPC worker's starts (a hot-hot process with the rpc role and not the flow role, docs/node.md
/// "Roles"): each is admitted here as a flow engine admits one, then written to the node database
/// with a row in its partition's start queue (`NodeFlowStore.enqueue`) for the process serving
/// that partition to run (`QueuedStarts`), which the bus tells at once. The worker answers from
/// the flow's status in the database.
struct StartQueue: Sendable {
    /// Admits starts (and makes their ids, in partitions taken at random); runs no flow.
    let engine: FlowEngine
    let store: any NodeFlowStore
    let map: FlowPartitions
    /// Tells the processes serving partitions that starts were queued (the bus; nothing without one).
    let queued: @Sendable () -> Void

    /// Queues the start; returns its record and whether this call created the flow (false: the
    /// client request id named an existing one).
    func start(flowName: String, arguments: [UInt8], clientRequestId: String?) async throws -> (record: FlowRecord, created: Bool) {
        let started = try await engine.queue(flowName: flowName, arguments: arguments, clientRequestId: clientRequestId) { record in
            try await store.enqueue(record, partition: map.partition(of: record.id))
        }
        if started.created { queued() }
        return started
    }

    /// The flow's record once it has ended or is parked in the hospital, or as it stands after
    /// `timeout`: read from the database, first after 20 ms, then at doubling intervals up to half
    /// a second (the flow runs in another process).
    func awaitEnd(_ id: FlowID, timeout: Duration) async throws -> FlowRecord {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var pause = Duration.milliseconds(20)
        while true {
            guard let record = try await store.record(id) else { throw FlowEngineError.notFound(id) }
            let settled = record.status.isTerminal || (record.status == .hospitalised && record.retryAt == nil)
            if settled || clock.now >= deadline { return record }
            try await Task.sleep(for: min(pause, deadline - clock.now))
            pause = min(pause * 2, .milliseconds(500))
        }
    }
}
