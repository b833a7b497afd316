import Flows

/// Keeps a flow's event stream (`GET /v1/flows/{id}/events`) from looking idle: a flow that is
/// parked, or waiting for a peer or a timer, may send nothing for hours, and a proxy or client
/// with an idle timeout would cut the stream. The stream writes an SSE comment line at each tick.
enum EventStreamHeartbeat {
    /// What the stream sends at each tick: an SSE comment, which clients ignore.
    static let comment = ": keep-alive\n\n"
    /// Well under the 60 s idle timeouts common on the way (nginx's `proxy_read_timeout`, a cloud
    /// load balancer's default).
    static let interval = Duration.seconds(15)

    /// `events` in order, with a nil every `interval`; it ends when `events` ends, and stops
    /// both feeding tasks when its reader goes away.
    static func merged(_ events: AsyncStream<FlowEvent>, every interval: Duration) -> AsyncStream<FlowEvent?> {
        let (merged, continuation) = AsyncStream.makeStream(of: FlowEvent?.self)
        let forward = Task {
            for await event in events { continuation.yield(event) }
            continuation.finish()
        }
        let ticks = Task {
            while (try? await Task.sleep(for: interval)) != nil { continuation.yield(nil) }
        }
        continuation.onTermination = { _ in
            forward.cancel()
            ticks.cancel()
        }
        return merged
    }
}
