import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import JetStream

@Suite("Subscription buffer", .timeLimit(.minutes(10)))
struct MessageQueueTests {
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    func message(_ i: Int) -> NATSMessage { NATSMessage(subject: "s", payload: ByteBuffer(string: "\(i)")) }

    @Test func dropsNewMessagesWhenFullAndCounts() async throws {
        let queue = MessageQueue(limit: 3, eventLoop: loop)
        var results: [String] = []
        for i in 0..<5 {
            switch queue.deliver(message(i)) {
            case .delivered: results.append("ok")
            case .dropped(let total): results.append("drop\(total)")
            case .finished: results.append("end")
            }
        }
        #expect(results == ["ok", "ok", "ok", "drop1", "drop2"])
        #expect(queue.droppedCount == 2)
        guard case .message(let first) = try await queue.next() else {
            Issue.record("expected a message")
            return
        }
        #expect(first.string == "0")
        #expect(queue.bufferedCount == 2)
    }

    @Test func handsMessagesToAWaitingTask() async throws {
        let queue = MessageQueue(limit: 1, eventLoop: loop)
        async let next = queue.next()
        // Deliver until the waiter has taken one: the waiter may not be registered yet.
        while queue.bufferedCount == 0 {
            _ = queue.deliver(message(1))
            if queue.bufferedCount > 0 { break }
            try await Task.sleep(for: .milliseconds(1))
        }
        guard case .message(let m) = try await next else {
            Issue.record("expected a message")
            return
        }
        #expect(m.string == "1")
    }

    @Test func timesOutAndFinishes() async throws {
        let queue = MessageQueue(limit: 4, eventLoop: loop)
        guard case .timedOut = try await queue.next(timeout: .milliseconds(20)) else {
            Issue.record("expected a timeout")
            return
        }
        _ = queue.deliver(message(7))
        queue.finish()
        #expect(queue.deliver(message(8)).isFinished)
        guard case .message = try await queue.next(), case .finished = try await queue.next() else {
            Issue.record("expected the buffered message, then the end")
            return
        }
    }

    @Test func finishWithErrorThrowsAfterTheBufferedMessages() async throws {
        let queue = MessageQueue(limit: 4, eventLoop: loop)
        _ = queue.deliver(message(1))
        queue.finish(error: .connectionClosed)
        guard case .message = try await queue.next() else {
            Issue.record("expected a message")
            return
        }
        await #expect(throws: NATSError.connectionClosed) { try await queue.next() }
    }

    @Test func cancellationEndsTheWait() async throws {
        let queue = MessageQueue(limit: 4, eventLoop: loop)
        let task = Task { try await queue.next() }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}

extension MessageQueue.DeliveryResult {
    var isFinished: Bool { if case .finished = self { true } else { false } }
}

@Suite("JetStream coding", .timeLimit(.minutes(10)))
struct JetStreamCodingTests {
    @Test func parsesBothAckSubjectForms() throws {
        let v1 = try #require(DeliveryMetadata(replySubject: "$JS.ACK.LOG.c1.1.42.7.1700000000000000000.3"))
        #expect(v1.stream == "LOG" && v1.consumer == "c1" && v1.delivered == 1)
        #expect(v1.streamSequence == 42 && v1.consumerSequence == 7 && v1.pending == 3 && v1.domain == nil)
        #expect(v1.timestampNanos == 1_700_000_000_000_000_000)
        let v2 = try #require(DeliveryMetadata(replySubject: "$JS.ACK.hub.ACCHASH.LOG.c1.2.43.8.1700000000000000001.0.rnd"))
        #expect(v2.domain == "hub" && v2.stream == "LOG" && v2.streamSequence == 43 && v2.delivered == 2)
        #expect(DeliveryMetadata(replySubject: "_INBOX.abc.def") == nil)
        #expect(DeliveryMetadata(replySubject: "$JS.ACK.LOG.c1.x.42.7.1.3") == nil)
    }

    @Test func streamConfigUsesNanosecondsAndSnakeCase() throws {
        var config = StreamConfig(name: "LOG", subjects: ["log.>"], replicas: 3)
        config.maxAge = .seconds(2)
        let json = try JSONSerialization.jsonObject(with: Data(JSONCoding.encode(config).readableBytesView)) as! [String: Any]
        #expect(json["num_replicas"] as? Int == 3)
        #expect(json["max_age"] as? Int == 2_000_000_000)
        #expect(json["duplicate_window"] as? Int == 120_000_000_000)
        #expect(json["storage"] as? String == "file")
        let decoded = try JSONDecoder().decode(StreamConfig.self, from: Data(JSONCoding.encode(config).readableBytesView))
        #expect(decoded == config)
    }

    @Test func consumerConfigEncodesTheStartSequence() throws {
        var config = ConsumerConfig(deliverPolicy: .byStartSequence(17), ackPolicy: .none, filterSubject: "a.>")
        config.inactiveThreshold = .seconds(30)
        let data = Data(try JSONCoding.encode(config).readableBytesView)
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        #expect(json["deliver_policy"] as? String == "by_start_sequence")
        #expect(json["opt_start_seq"] as? Int == 17)
        #expect(json["ack_policy"] as? String == "none")
        #expect(json["inactive_threshold"] as? Int == 30_000_000_000)
        #expect(json["durable_name"] == nil)
        #expect(try JSONDecoder().decode(ConsumerConfig.self, from: data) == config)
    }

    @Test func apiErrorsBecomeTypedErrors() {
        let reply = NATSMessage(
            subject: "x",
            payload: ByteBuffer(string: #"{"type":"t","error":{"code":404,"err_code":10059,"description":"stream not found"}}"#))
        #expect(throws: JetStreamError.api(status: 404, errorCode: 10059, description: "stream not found")) {
            try JSONCoding.decodeResponse(StreamInfo.self, from: reply)
        }
        let garbage = NATSMessage(subject: "x", payload: ByteBuffer(string: "nope"))
        #expect(throws: JetStreamError.self) { try JSONCoding.decodeResponse(PubAck.self, from: garbage) }
    }

    /// Stream info as nats-server answers it from the stream's leader, from a member while the
    /// stream has no leader (with its own, possibly stale, state), from a member that saw a leader
    /// elected while it answered, from one that names a leader but not all the stream's other
    /// members, and from a server without a cluster.
    @Test func streamInfoSaysWhetherTheStreamsLeaderAnswered() throws {
        func info(_ cluster: String, replicas: Int = 3) throws -> StreamInfo {
            let json = #"{"type":"io.nats.jetstream.api.v1.stream_info_response","config":{"name":"LOG","subjects":["log"],"num_replicas":"#
                + "\(replicas)},"
                + #""state":{"messages":6,"bytes":60,"first_seq":1,"last_seq":6,"consumer_count":0},"cluster":"# + cluster + "}"
            return try JSONCoding.decodeResponse(StreamInfo.self, from: NATSMessage(subject: "x", payload: ByteBuffer(string: json)))
        }
        let leader = try info(#"{"name":"c","leader":"n1","replicas":[{"name":"n2","current":true,"active":1000,"lag":0},{"name":"n3","current":true,"active":1000}]}"#)
        #expect(leader.isFromLeader && leader.state.lastSequence == 6)
        let leaderless = try info(#"{"name":"c","replicas":[{"name":"n1","current":false,"offline":true,"active":0},{"name":"n2","current":true,"active":0},{"name":"n3","current":false,"offline":true,"active":0}]}"#)
        #expect(!leaderless.isFromLeader)
        let overtaken = try info(#"{"name":"c","leader":"n1","replicas":[{"name":"n1","current":true,"active":1000},{"name":"n3","current":true,"active":1000}]}"#)
        #expect(!overtaken.isFromLeader)
        // The leader lists the others, those down too; fewer, or none, is not the leader's answer.
        #expect(try info(#"{"name":"c","leader":"n1","replicas":[{"name":"n2","current":false,"offline":true,"active":0},{"name":"n3","current":true,"active":1000}]}"#).isFromLeader)
        #expect(try !info(#"{"name":"c","leader":"n1","replicas":[{"name":"n3","current":true,"active":1000}]}"#).isFromLeader)
        #expect(try !info(#"{"name":"c","leader":"n1"}"#).isFromLeader)
        #expect(try info(#"{"leader":"solo"}"#, replicas: 1).isFromLeader)
        #expect(try !info(#"{"name":"c","leader":""}"#).isFromLeader)
    }

    @Test func parsesServerTimestamps() {
        #expect(JSONCoding.parseTimestamp("2023-11-14T22:13:20.123456789Z") == 1_700_000_000_123_456_789)
        #expect(JSONCoding.parseTimestamp("2023-11-14T22:13:20Z") == 1_700_000_000_000_000_000)
        #expect(JSONCoding.parseTimestamp("garbage") == nil)
    }

    @Test func keyValidation() {
        #expect(throws: Never.self) { try KeyValue.validateKey("a/b_c-d=e.f") }
        for bad in ["", ".a", "a.", "a b", "a*"] {
            #expect(throws: JetStreamError.invalidKey(bad)) { try KeyValue.validateKey(bad) }
        }
        #expect(throws: Never.self) { try KeyValue.validateKey("a.*", wildcards: true) }
        #expect(throws: JetStreamError.invalidName("a.b")) { try KeyValue.validateBucket("a.b") }
    }
}

/// Durations travel as 64-bit nanoseconds; one beyond them is sent as the longest there is. A
/// stream config with a duplicate window of 9.3e9 s trapped on overflow (found from outside).
@Test func aDurationBeyondSixtyFourBitNanosecondsIsSentAsTheLongest() throws {
    #expect(Duration.seconds(2).nanoseconds == 2_000_000_000)
    #expect(Duration.milliseconds(1_500).nanoseconds == 1_500_000_000)
    #expect(Duration.seconds(9_300_000_000).nanoseconds == .max)
    #expect(Duration.seconds(-9_300_000_000).nanoseconds == .min)
    var config = StreamConfig(name: "LOG", subjects: ["log"])
    config.duplicateWindow = .seconds(9_300_000_000)
    let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any]
    #expect((json?["duplicate_window"] as? NSNumber)?.int64Value == .max)
}
