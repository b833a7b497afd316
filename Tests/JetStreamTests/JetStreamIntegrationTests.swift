import HawserTestSupport
import Foundation
import JetStream
import NIOCore
import Testing

/// Creates a stream, retrying while a fresh cluster is still placing peers.
func createStreamWhenReady(_ js: JetStreamContext, _ config: StreamConfig) async throws -> StreamInfo {
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(20)
    while true {
        do {
            return try await js.createStream(config)
        } catch let error as JetStreamError {
            guard case .api(let status, _, _) = error, status >= 500, clock.now < deadline else { throw error }
        } catch NATSError.timeout where clock.now < deadline {
        }
        try await Task.sleep(for: .milliseconds(200))
    }
}

@Suite("JetStream against a 3-server cluster", .serialized, .timeLimit(.minutes(10)))
struct JetStreamIntegrationTests {
    @Test func replicatedStreamPublishAckDedupAndOrderedReads() async throws {
        try await withNATSCluster { cluster in
            try await NATSClient.withConnection(clientOptions(cluster)) { client in
                let js = JetStreamContext(client: client)
                let info = try await createStreamWhenReady(js, StreamConfig(name: "LOG", subjects: ["log.>"], replicas: 3))
                #expect(info.config.replicas == 3)
                #expect(info.cluster?.replicas?.count == 2)
                await #expect(throws: JetStreamError.self) { try await js.streamInfo("MISSING") }

                // Publish with acknowledgement; a repeated Nats-Msg-Id is a duplicate.
                let first = try await js.publish("log.a", payload: "m1", options: PublishOptions(messageID: "id-1"))
                #expect(first == PubAck.make(stream: "LOG", sequence: 1))
                let again = try await js.publish("log.a", payload: "m1", options: PublishOptions(messageID: "id-1"))
                #expect(again.sequence == 1 && again.duplicate)
                // Expected last sequence: accepted when right, refused when stale.
                let second = try await js.publish(
                    "log.b", payload: "m2", options: PublishOptions(messageID: "id-2", expectedLastSequence: 1))
                #expect(second.sequence == 2)
                await #expect(throws: JetStreamError.self) {
                    try await js.publish("log.b", payload: "x", options: PublishOptions(expectedLastSequence: 1))
                }
                var headers = NATSHeaders()
                headers["Entry-Kind"] = "test"
                for i in 3...1000 {
                    let ack = try await js.publish(
                        "log.\(i % 3)", payload: "m\(i)", headers: headers, options: PublishOptions(messageID: "id-\(i)"))
                    #expect(ack.sequence == UInt64(i))
                }
                #expect(try await js.streamInfo("LOG").state.lastSequence == 1000)

                let stored = try #require(try await js.stream("LOG").getMessage(sequence: 500))
                #expect(stored.string == "m500" && stored.headers?["Entry-Kind"] == "test")
                #expect(stored.timestampNanos != nil)
                #expect(try await js.getMessage(stream: "LOG", sequence: 5000) == nil)

                // Read in order from sequence 250, in batches of at most 64, up to the end.
                var next: UInt64 = 250
                var batches = 0
                for try await batch in js.stream("LOG").read(from: 250, batch: 64) {
                    #expect(!batch.isEmpty && batch.count <= 64)
                    for m in batch {
                        #expect(m.sequence == next)
                        #expect(m.string == "m\(next)")
                        next += 1
                    }
                    batches += 1
                    if next > 1000 { break }
                }
                #expect(next == 1001)
                #expect(batches >= 12)

                // A reader that has caught up receives new messages as they are published.
                var reader = js.stream("LOG").read(from: 1001, batch: 10).makeAsyncIterator()
                async let tail = reader.next()
                _ = try await js.publish("log.x", payload: "m1001")
                let tailBatch = try #require(try await tail)
                #expect(tailBatch.map(\.sequence) == [1001])

                // A durable pull consumer with explicit acks.
                var config = ConsumerConfig(durableName: "worker", deliverPolicy: .byStartSequence(990))
                config.ackWait = .seconds(30)
                let consumer = try await js.createConsumer(stream: "LOG", config: config)
                #expect(consumer.name == "worker")
                let fetched = try await js.fetch(stream: "LOG", consumer: "worker", batch: 5)
                #expect(fetched.map(\.streamSequence) == [990, 991, 992, 993, 994])
                for m in fetched { try await js.acknowledge(m) }
                try await js.deleteConsumer(stream: "LOG", consumer: "worker")

                let updated = try await js.updateStream(
                    { var c = info.config; c.maxMessages = 5000; return c }())
                #expect(updated.config.maxMessages == 5000)
                try await js.deleteStream("LOG")
                await #expect(throws: JetStreamError.self) { try await js.streamInfo("LOG") }
            }
        }
    }

    /// The reader recreates its consumer when it disappears and continues without gaps.
    @Test func readerSurvivesItsConsumerBeingDeleted() async throws {
        try await withNATSCluster { cluster in
            try await NATSClient.withConnection(clientOptions(cluster)) { client in
                let js = JetStreamContext(client: client)
                _ = try await createStreamWhenReady(js, StreamConfig(name: "R", subjects: ["r"], replicas: 3))
                for i in 1...50 { _ = try await js.publish("r", payload: "\(i)") }
                var reader = js.stream("R").read(from: 1, batch: 20, expires: .seconds(2)).makeAsyncIterator()
                var sequences: [UInt64] = []
                sequences += try #require(try await reader.next()).map(\.sequence)
                let names = try await js.consumerNames(stream: "R")
                #expect(names.count == 1)
                for name in names { try await js.deleteConsumer(stream: "R", consumer: name) }
                for i in 51...100 { _ = try await js.publish("r", payload: "\(i)") }
                while sequences.last != 100 {
                    sequences += try #require(try await reader.next()).map(\.sequence)
                }
                #expect(sequences == Array(1...100))
                let after = try await js.consumerNames(stream: "R")
                #expect(after.count == 1 && after != names)
            }
        }
    }

    @Test func keyValueBucket() async throws {
        try await withNATSCluster { cluster in
            try await NATSClient.withConnection(clientOptions(cluster)) { client in
                let js = JetStreamContext(client: client)
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(20)
                var made: KeyValue?
                while made == nil {
                    do {
                        made = try await js.createKeyValue(KeyValueConfig(bucket: "config", history: 5, replicas: 3))
                    } catch let error as JetStreamError where clock.now < deadline {
                        guard case .api(let status, _, _) = error, status >= 500 else { throw error }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
                let kv = try #require(made)
                await #expect(throws: JetStreamError.bucketNotFound("nope")) { try await js.keyValue("nope") }
                let bound = try await js.keyValue("config")

                #expect(try await kv.get("a") == nil)
                let r1 = try await kv.put("a", value: "one")
                #expect(try await bound.get("a")?.string == "one")
                #expect(try await kv.get("a")?.revision == r1)

                // create fails when the key exists
                await #expect(throws: JetStreamError.keyExists(key: "a", revision: r1)) {
                    try await kv.create("a", value: ByteBuffer(string: "x"))
                }
                let rb = try await kv.create("b", value: ByteBuffer(string: "bee"))

                // update only from the latest revision
                let r2 = try await kv.update("a", value: ByteBuffer(string: "two"), revision: r1)
                await #expect(throws: JetStreamError.self) {
                    try await kv.update("a", value: ByteBuffer(string: "stale"), revision: r1)
                }
                #expect(try await kv.get("a")?.string == "two")

                // watch: current values first, then changes
                var watch = try kv.watch().makeAsyncIterator()
                let initial1 = try #require(try await watch.next())
                let initial2 = try #require(try await watch.next())
                #expect(Set([initial1.key, initial2.key]) == ["a", "b"])
                #expect(initial2.delta == 0)
                #expect([initial1, initial2].first { $0.key == "a" }?.revision == r2)
                #expect([initial1, initial2].first { $0.key == "b" }?.revision == rb)

                let rd = try await kv.delete("a")
                #expect(try await kv.get("a") == nil)
                let deleted = try #require(try await watch.next())
                #expect(deleted.key == "a" && deleted.operation == .delete && deleted.revision == rd)

                // A deleted key can be created again.
                let r3 = try await kv.create("a", value: ByteBuffer(string: "three"))
                let recreated = try #require(try await watch.next())
                #expect(recreated.revision == r3 && recreated.string == "three" && recreated.operation == .put)

                try await kv.purge("b")
                let purged = try #require(try await watch.next())
                #expect(purged.key == "b" && purged.operation == .purge)
                #expect(try await kv.get("b") == nil)

                await #expect(throws: JetStreamError.invalidKey(".bad")) { try await kv.get(".bad") }
                try await js.deleteKeyValue("config")
            }
        }
    }
}

extension PubAck {
    static func make(stream: String, sequence: UInt64, duplicate: Bool = false) -> PubAck {
        let json = "{\"stream\":\"\(stream)\",\"seq\":\(sequence),\"duplicate\":\(duplicate)}"
        return try! JSONDecoder().decode(PubAck.self, from: Data(json.utf8))
    }
}
