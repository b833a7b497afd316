import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Testing

/// A start queued by one engine (an RPC worker's, `FlowEngine.queue`) runs once on the engine that
/// adopts it (the partition owner's, `FlowEngine.adopt`): not before that engine has resumed, not
/// again when adopted twice or after it ended, and a used client request id names the first flow.
/// An engine that only queues runs nothing, whatever it is asked.
@Suite(.timeLimit(.minutes(2))) struct QueuedStartTests {
    /// A worker without the flow role has an engine that admits starts for the queue; its stores
    /// are fenced by no partition, so a flow it ran could run beside the partition owner's run.
    @Test func anEngineThatOnlyQueuesRefusesToRunAFlow() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let register: (inout FlowRegistry) -> Void = { $0.register(CallFirstFlow.self) }
        let arguments = try FlowCoding.encode(CallFirstFlow())
        // A flow some other engine started, unfinished: a resume would run it.
        let other = try await harness.engine(register: register).queue(flowName: CallFirstFlow.flowName, arguments: arguments) {
            try await harness.database.flows.enqueue([QueuedStart($0, partition: 0)])[0]
        }
        let rpc = harness.engine(runsFlows: false, register: register)
        await #expect(throws: FlowEngineError.runsNoFlows) {
            try await rpc.startReporting(flowName: CallFirstFlow.flowName, arguments: arguments, clientRequestId: "r-1")
        }
        await #expect(throws: FlowEngineError.runsNoFlows) {
            try await rpc.startAndWait(flowName: CallFirstFlow.flowName, arguments: arguments, clientRequestId: "r-2", timeout: .seconds(1))
        }
        await #expect(throws: FlowEngineError.runsNoFlows) { try await rpc.resumeUnfinished() }
        #expect(rpc.adopt([other.record]).isEmpty && rpc.runningCount == 0)
        #expect(try await harness.database.flows.record(clientRequestId: "r-1") == nil, "a refused start writes nothing")
        // What it is for: queuing.
        let queued = try await rpc.queue(flowName: CallFirstFlow.flowName, arguments: arguments, clientRequestId: "r-3") {
            try await harness.database.flows.enqueue([QueuedStart($0, partition: 0)])[0]
        }
        #expect(queued.created && queued.record.status == .running)
        #expect(harness.hooks.calls("call") == 0)
    }

    @Test func aQueuedStartRunsOnceWhereItIsAdopted() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let register: (inout FlowRegistry) -> Void = { $0.register(CallFirstFlow.self) }
        let rpc = harness.engine(register: register)
        let arguments = try FlowCoding.encode(CallFirstFlow())
        let first = try await rpc.queue(flowName: CallFirstFlow.flowName, arguments: arguments, clientRequestId: "c-1") {
            try await harness.database.flows.enqueue([QueuedStart($0, partition: 0)])[0]
        }
        #expect(first.created && first.record.status == .running)
        let again = try await rpc.queue(flowName: CallFirstFlow.flowName, arguments: arguments, clientRequestId: "c-1") {
            try await harness.database.flows.enqueue([QueuedStart($0, partition: 0)])[0]
        }
        #expect(!again.created && again.record.id == first.record.id)
        #expect(try await harness.database.flows.queued(in: [0], limit: 10).map(\.id) == [first.record.id])
        #expect(harness.hooks.calls("call") == 0)  // queued, not run

        // The queue as read before the flow ran: it says "running".
        let read = try await harness.database.flows.queued(in: [0], limit: 10)
        #expect(read.map(\.id) == [first.record.id] && read[0].status == .running)
        let owner = harness.engine(register: register)
        #expect(owner.adopt(read).isEmpty)  // not resumed yet: nothing taken
        try await running(owner) {
            while !owner.hasResumed { await Task.yield() }
            // The resume found the queued flow (it is a running flow in the database) and runs it;
            // adopting it now, twice, settles it without a second run.
            #expect(owner.adopt(read) == [first.record.id] && owner.adopt(read) == [first.record.id])
            let ended = try await owner.waitForEnd(first.record.id, timeout: .seconds(30))
            #expect(ended.status == .completed)
            // That stale read, adopted once the flow's task has gone: the new task reads the
            // store and does not run the flow again.
            while owner.runningCount > 0 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(owner.adopt(read) == [first.record.id])
            while owner.runningCount > 0 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(try await harness.database.flows.record(first.record.id) == ended)
        }
        #expect(harness.hooks.calls("call") == 1)

        // Queued while the owner runs: adopting launches it.
        let second = try await rpc.queue(flowName: CallFirstFlow.flowName, arguments: arguments, clientRequestId: nil) {
            try await harness.database.flows.enqueue([QueuedStart($0, partition: 0)])[0]
        }
        let next = harness.engine(register: register)
        try await running(next) {
            while !next.hasResumed { await Task.yield() }
            let third = try await rpc.queue(flowName: CallFirstFlow.flowName, arguments: arguments, clientRequestId: nil) {
                try await harness.database.flows.enqueue([QueuedStart($0, partition: 0)])[0]
            }
            #expect(next.adopt(try await harness.database.flows.queued(in: [0], limit: 10)).contains(third.record.id))
            #expect(try await next.waitForEnd(third.record.id, timeout: .seconds(30)).status == .completed)
            #expect(try await next.waitForEnd(second.record.id, timeout: .seconds(30)).status == .completed)
        }
        #expect(harness.hooks.calls("call") == 3)
    }
}

/// A flow whose first step is an external call: run again from an empty journal, it would call again.
struct CallFirstFlow: Flow {
    static let flowName = "CallFirst"

    func run(_ context: FlowContext) async throws -> String {
        let hooks = context.services.service(Hooks.self)!
        return try await context.external("call") { _ in
            try hooks.call("call")
            return "v"
        }
    }
}
