import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Testing

/// A start queued by one engine (an RPC worker's, `FlowEngine.queue`) runs once on the engine that
/// adopts it (the partition owner's, `FlowEngine.adopt`): not before that engine has resumed, not
/// again when adopted twice or after it ended, and a used client request id names the first flow.
@Suite(.timeLimit(.minutes(2))) struct QueuedStartTests {
    @Test func aQueuedStartRunsOnceWhereItIsAdopted() async throws {
        let directory = try TemporaryDirectory()
        let harness = try EngineHarness(directory: directory.path)
        let rpc = harness.engine()
        let arguments = try FlowCoding.encode(StepsFlow())
        let first = try await rpc.queue(flowName: StepsFlow.flowName, arguments: arguments, clientRequestId: "c-1") {
            try await harness.database.flows.enqueue($0, partition: 0)
        }
        #expect(first.created && first.record.status == .running)
        let again = try await rpc.queue(flowName: StepsFlow.flowName, arguments: arguments, clientRequestId: "c-1") {
            try await harness.database.flows.enqueue($0, partition: 0)
        }
        #expect(!again.created && again.record.id == first.record.id)
        #expect(try await harness.database.flows.queued(in: [0], limit: 10) == [first.record.id])
        #expect(harness.hooks.calls("call") == 0)  // queued, not run

        let owner = harness.engine()
        #expect(try await owner.adopt([first.record.id]).isEmpty)  // not resumed yet: nothing taken
        try await running(owner) {
            while !owner.hasResumed { await Task.yield() }
            // The resume found the queued flow (it is a running flow in the database) and runs it;
            // adopting it now, twice at once, settles it without a second run.
            async let one = owner.adopt([first.record.id])
            async let two = owner.adopt([first.record.id])
            let (a, b) = try await (one, two)
            #expect(a == [first.record.id] && b == [first.record.id])
            let ended = try await owner.waitForEnd(first.record.id, timeout: .seconds(30))
            #expect(ended.status == .completed)
            #expect(try await owner.adopt([first.record.id, FlowID("unknown")]) == [first.record.id, FlowID("unknown")])
        }
        #expect(harness.hooks.calls("call") == 1)

        // Queued while the owner runs: adopting launches it.
        let second = try await rpc.queue(flowName: StepsFlow.flowName, arguments: arguments, clientRequestId: nil) {
            try await harness.database.flows.enqueue($0, partition: 0)
        }
        let next = harness.engine()
        try await running(next) {
            while !next.hasResumed { await Task.yield() }
            let third = try await rpc.queue(flowName: StepsFlow.flowName, arguments: arguments, clientRequestId: nil) {
                try await harness.database.flows.enqueue($0, partition: 0)
            }
            #expect(try await next.adopt([third.record.id]) == [third.record.id])
            #expect(try await next.waitForEnd(third.record.id, timeout: .seconds(30)).status == .completed)
            #expect(try await next.waitForEnd(second.record.id, timeout: .seconds(30)).status == .completed)
        }
        #expect(harness.hooks.calls("call") == 3)
    }
}
