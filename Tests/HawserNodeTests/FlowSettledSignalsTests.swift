import Flows
@testable import HawserNode
import Testing

/// An RPC worker's waiter for a flow wakes on the bus's news of that flow (`flows_settled`), not of
/// another's, and news that came before the waiter slept is not lost.
@Suite(.timeLimit(.minutes(1))) struct FlowSettledSignalsTests {
    @Test func aWaiterWakesOnNewsOfItsFlow() async throws {
        let signals = FlowSettledSignals()
        let waiter = signals.waiter(for: FlowID("a"))
        defer { waiter.cancel() }
        let other = signals.waiter(for: FlowID("b"))
        let slept = Task { await waiter.sleep(for: .seconds(3_600)); return true }
        signals.settled([FlowID("b")])
        signals.settled([FlowID("a"), FlowID("c")])
        #expect(await slept.value)  // an hour's sleep ended by the news (the time limit is a minute)
        // News of "b" came before its waiter slept: the sleep ends at once.
        await other.sleep(for: .seconds(3_600))
        other.cancel()
    }
}
