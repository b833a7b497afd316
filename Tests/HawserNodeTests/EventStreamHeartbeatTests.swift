import Flows
@testable import HawserNode
import Testing

/// A flow's event stream sends a comment line when it has nothing to say, so that idle timeouts
/// on the way do not cut it, and stops its feeding tasks once its reader is gone.
@Suite(.timeLimit(.minutes(2))) struct EventStreamHeartbeatTests {
    @Test func aQuietStreamTicksAndEventsPassInOrderToTheEnd() async throws {
        let (events, source) = AsyncStream.makeStream(of: FlowEvent.self)
        var merged = EventStreamHeartbeat.merged(events, every: .milliseconds(10)).makeAsyncIterator()
        #expect(await merged.next() == .some(nil), "nothing to send: a tick")
        let id = FlowID.next()
        source.yield(.progress(id, sequence: 0, step: "a"))
        source.yield(.progress(id, sequence: 1, step: "b"))
        source.finish()
        var seen = [FlowEvent]()
        while let item = await merged.next() {
            if let event = item { seen.append(event) }
        }
        #expect(seen == [.progress(id, sequence: 0, step: "a"), .progress(id, sequence: 1, step: "b")])
    }

    @Test func aReaderThatGoesAwayStopsTheWatch() async throws {
        let (ended, endedSignal) = AsyncStream.makeStream(of: Void.self)
        let (events, source) = AsyncStream.makeStream(of: FlowEvent.self)
        source.onTermination = { _ in endedSignal.yield() }
        do {
            var merged = EventStreamHeartbeat.merged(events, every: .milliseconds(10)).makeAsyncIterator()
            #expect(await merged.next() == .some(nil))
        }
        // The flow's watch (its stream's termination) ends once the merged stream is released.
        var signals = ended.makeAsyncIterator()
        #expect(await signals.next() != nil)
    }
}
