import JetStream
import NIOCore
import Notary

/// The replicas' link on the log's own NATS connection: reports go to every replica on one
/// subject, forwarded batches are requests to the sequencer's own subject (core NATS, not
/// stored: a lost message only delays progress).
extension JetStreamLog: ReplicaLink {
    var reportsSubject: String { "hawser.replicas.\(configuration.stream).reports" }
    func appendSubject(_ replica: String) -> String { "hawser.replicas.\(configuration.stream).append.\(replica)" }

    public func publish(report: [UInt8]) async throws {
        try await context().client.publish(reportsSubject, payload: report)
    }

    public func reports() async throws -> AsyncThrowingStream<[UInt8], any Error> {
        let subscription = try await context().client.subscribe(reportsSubject)
        return AsyncThrowingStream { continuation in
            let pump = Task {
                do {
                    for try await message in subscription { continuation.yield(Array(message.payload.readableBytesView)) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
    }

    public func forward(_ batch: [UInt8], to replica: String, timeout: Duration) async throws -> [UInt8] {
        let reply = try await context().client.request(appendSubject(replica), payload: ByteBuffer(bytes: batch), timeout: timeout)
        return Array(reply.payload.readableBytesView)
    }

    public func serveForwards(as replica: String, _ handle: @escaping @Sendable ([UInt8]) async -> [UInt8]) async throws {
        let client = try await context().client
        let subscription = try await client.subscribe(appendSubject(replica))
        try await withThrowingDiscardingTaskGroup { group in
            for try await message in subscription {
                guard let replyTo = message.replyTo else { continue }
                let batch = Array(message.payload.readableBytesView)
                group.addTask {
                    let answer = await handle(batch)
                    try? await client.publish(replyTo, payload: answer)
                }
            }
        }
    }
}
