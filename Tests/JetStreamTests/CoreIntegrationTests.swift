import HawserTestSupport
import JetStream
import NIOCore
import Testing

func clientOptions(_ cluster: NATSCluster, _ configure: (inout NATSOptions) -> Void = { _ in }) -> NATSOptions {
    var options = NATSOptions(servers: cluster.urls, connectTimeout: .seconds(2))
    options.reconnect = ReconnectPolicy(initialDelay: .milliseconds(50), maxDelay: .milliseconds(500))
    configure(&options)
    return options
}

@Suite("NATS core against nats-server", .serialized, .timeLimit(.minutes(10)))
struct CoreIntegrationTests {
    @Test func pubSubWithHeadersAndRequestReply() async throws {
        try await withNATSCluster(size: 1, jetStream: false) { cluster in
            try await NATSClient.withConnection(clientOptions(cluster)) { client in
                let sub = try await client.subscribe("greet.*")
                try await client.flush()
                var headers = NATSHeaders()
                headers["X-Trace"] = "t1"
                headers.append("b", for: "Multi")
                headers.append("c", for: "Multi")
                try await client.publish("greet.joe", payload: "hello", headers: headers)
                try await client.publish("greet.ann", payload: [1, 2, 3])
                let first = try #require(try await sub.next(timeout: .seconds(5)))
                #expect(first.subject == "greet.joe")
                #expect(first.string == "hello")
                #expect(first.headers?["x-trace"] == "t1")
                #expect(first.headers?.values(for: "Multi") == ["b", "c"])
                let second = try #require(try await sub.next(timeout: .seconds(5)))
                #expect(second.bytes == [1, 2, 3])
                #expect(second.headers == nil)

                // A responder in a child task; requests share one inbox subscription.
                let service = try await client.subscribe("echo", queue: "workers")
                try await client.flush()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await request in service {
                            guard let reply = request.replyTo else { continue }
                            try await client.publish(reply, payload: "echo: " + request.string)
                        }
                    }
                    for i in 0..<20 {
                        let reply = try await client.request("echo", payload: "\(i)", timeout: .seconds(5))
                        #expect(reply.string == "echo: \(i)")
                    }
                    await service.unsubscribe()
                    try await group.waitForAll()
                }
                await #expect(throws: NATSError.noResponders) {
                    try await client.request("nobody.home", timeout: .seconds(5))
                }
                let max = await client.maxPayload
                await #expect(throws: NATSError.maxPayloadExceeded(size: max + 1, limit: max)) {
                    try await client.publish("big", payload: ByteBuffer(repeating: 0, count: max + 1))
                }
            }
        }
    }

    @Test func userPasswordAndTokenAuthentication() async throws {
        try await withNATSCluster(size: 1, jetStream: false, auth: .userPassword("alice", "s3cret")) { cluster in
            await #expect(throws: NATSError.authorizationViolation("Authorization Violation")) {
                try await NATSClient.connect(clientOptions(cluster) { $0.user = "alice"; $0.password = "wrong" })
            }
            await #expect(throws: NATSError.authorizationViolation("Authorization Violation")) {
                try await NATSClient.connect(clientOptions(cluster))
            }
            try await NATSClient.withConnection(clientOptions(cluster) { $0.user = "alice"; $0.password = "s3cret" }) {
                try await $0.flush()
            }
            let port = cluster.servers[0].port
            try await NATSClient.withConnection(clientOptions(cluster) { $0.servers = ["nats://alice:s3cret@127.0.0.1:\(port)"] }) {
                try await $0.flush()
            }
        }
        try await withNATSCluster(size: 1, jetStream: false, auth: .token("t0ken")) { cluster in
            await #expect(throws: NATSError.self) {
                try await NATSClient.connect(clientOptions(cluster) { $0.token = "nope" })
            }
            try await NATSClient.withConnection(clientOptions(cluster) { $0.token = "t0ken" }) { try await $0.flush() }
        }
    }

    @Test func slowConsumerDropsAndCounts() async throws {
        try await withNATSCluster(size: 1, jetStream: false) { cluster in
            try await NATSClient.withConnection(clientOptions(cluster) { $0.subscriptionBufferLimit = 10 }) { client in
                let events = client.events()
                let sub = try await client.subscribe("flood")
                try await client.flush()
                for i in 0..<100 { try await client.publish("flood", payload: "\(i)") }
                try await client.flush()
                // The server has delivered everything once a second round trip completes.
                try await client.flush()
                #expect(sub.droppedCount == 90)
                var received: [String] = []
                while received.count < 10, let m = try await sub.next(timeout: .seconds(2)) { received.append(m.string) }
                #expect(received == (0..<10).map(String.init))
                for await event in events {
                    if case .slowConsumer(let subject, _, let dropped) = event {
                        #expect(subject == "flood")
                        #expect(dropped == 1)
                        break
                    }
                }
            }
        }
    }

    /// Publishes made while the only server is down are buffered (up to the limit), sent after the
    /// client reconnects to the restarted server, and received by the resubscribed subscription.
    @Test func buffersPublishesAcrossAServerRestart() async throws {
        try await withNATSCluster(size: 1, jetStream: false) { cluster in
            let options = clientOptions(cluster) { $0.reconnectBufferSize = 4096 }
            try await NATSClient.withConnection(options) { client in
                let events = client.events()
                let sub = try await client.subscribe("buffered.>")
                try await client.flush()
                let server = cluster.servers[0]
                server.kill9()
                for await event in events {
                    if case .disconnected = event { break }
                }
                #expect(await client.connectedServer == nil)
                for i in 0..<10 { try await client.publish("buffered.\(i)", payload: "\(i)") }
                await #expect(throws: NATSError.reconnectBufferExceeded) {
                    try await client.publish("buffered.big", payload: ByteBuffer(repeating: 1, count: 5000))
                }
                try cluster.restart(server)
                for await event in events {
                    if case .reconnected = event { break }
                }
                try await client.flush()
                var received: [String] = []
                while received.count < 10, let m = try await sub.next(timeout: .seconds(5)) { received.append(m.string) }
                #expect(received == (0..<10).map(String.init))
            }
        }
    }

    @Test func tlsWithAPrivateCA() async throws {
        try await withNATSCluster(size: 1, jetStream: false, tls: true) { cluster in
            let tls = try NATSOptions.tlsConfiguration(caFile: cluster.certificatePath)
            try await NATSClient.withConnection(clientOptions(cluster) { $0.tls = tls }) { client in
                #expect(await client.serverInfo?.tlsRequired == true)
                let sub = try await client.subscribe("secure")
                try await client.flush()
                try await client.publish("secure", payload: "over TLS")
                #expect(try await sub.next(timeout: .seconds(5))?.string == "over TLS")
            }
            // The server requires TLS: the client upgrades by itself but does not trust the
            // self-signed certificate with the default trust store.
            await #expect(throws: (any Error).self) {
                try await NATSClient.connect(clientOptions(cluster))
            }
        }
    }
}
