import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import HawserClient
import HawserCore
import HawserNode
import HawserTestSupport
import HawserWire
import Hummingbird
import HummingbirdTesting
import Testing
import TokenSample

/// The notary's gRPC service (docs/notary-protocol.md, "gRPC") and `NotaryClient` over it: an
/// in-process notary, `hawser notary run` children that go away, and a node whose remote notary
/// is reached over gRPC.
@Suite(.timeLimit(.minutes(10))) struct NotaryGRPCTests {
    /// Many callers share the client's one stream; each gets its own verified answer, a double
    /// spend its conflict, and a stranger the HTTP API's refusal.
    @Test(.timeLimit(.minutes(2))) func manyCallersShareOneStreamAndEachGetsItsOwnVerifiedAnswer() async throws {
        try await withGRPCNotary { url, _ in
            let client = try NotaryClient(urls: [url])  // no pinned key: fetched with the Identity call
            #expect(try await client.identity() == Party(name: NotaryConfiguration().name, publicKey: notaryKey.publicKey))
            var ids = Ids(seed: 71)
            let requests = (0..<200).map { _ in signed(ids.hash(), inputs: [ids.ref()]) }
            let answers = try await withThrowingTaskGroup(of: (Int, NotarisationAnswer).self) { group in
                for (i, request) in requests.enumerated() { group.addTask { (i, try await client.notarise(request)) } }
                return try await group.reduce(into: [Int: NotarisationAnswer]()) { $0[$1.0] = $1.1 }
            }
            #expect(answers.count == 200)
            for (i, request) in requests.enumerated() {
                #expect(answers[i]?.txId == request.txId && answers[i]?.outcome == .committed)
            }
            let twin = signed(ids.hash(), inputs: requests[0].inputs)
            #expect(try await client.notarise(twin).outcome
                    == .conflict([Conflict(ref: requests[0].inputs[0], kind: .input, consumingTxIdHash: .sha256(requests[0].txId.bytes))]))
            let stranger = NotarisationRequest.signed(txId: ids.hash(), inputs: [ids.ref()], requesterName: "O=Mallory",
                                                      key: SigningKey(), notary: notaryKey.publicKey)
            await #expect { try await client.notarise(stranger) } throws: { ($0 as? APIError)?.code == .unknownParty }
            await #expect(throws: NotaryClientError.self) { try await client.answer(for: requests[0].txId) }
            try await client.shutdown()
        }
    }

    /// A malformed request gets, in its result message, the code and sentence the HTTP API gives
    /// for the same bytes; the stream goes on answering the requests after it.
    @Test(.timeLimit(.minutes(2))) func refusalsCarryTheHTTPAPIsCodeAndSentence() async throws {
        try await withGRPCNotary { url, http in
            var ids = Ids(seed: 72)
            var malformed = signed(ids.hash(), inputs: [ids.ref()]).proto
            malformed.txID = Data([1, 2, 3])
            let bad = malformed
            let good = signed(ids.hash(), inputs: [ids.ref()]).proto
            // The HTTP API's answer first: the test client's connection was opened with the server,
            // which closes one that sends no request within its header timeout (10 s), and the
            // stream below can take that long on a loaded machine.
            let httpError = try await http.execute(uri: "/v1/notarise", method: .post, headers: protobufHeaders,
                                                   body: ByteBuffer(bytes: try bad.serializedBytes() as [UInt8])) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                return try Hawser_V1_Error(serializedBytes: Array(buffer: response.body))
            }
            let results = try await withNotaryGRPCClient(url) { grpc in
                try await Hawser_V1_Notary.Client(wrapping: grpc).stream([(7, bad), (8, good), (9, nil)])
            }
            let refusal = try #require(results[7]?.error)
            #expect(refusal.code == "invalid_transaction_id")
            // No request at all: malformed, not a transaction id of no bytes (found from outside).
            #expect(results[9]?.error.code == "malformed_request" && results[9]?.error.message == "the streamed request has no `request`")
            #expect(refusal.code == httpError.code && refusal.message == httpError.message)
            if case .answer(let answer)? = results[8]?.result {
                #expect(try NotarisationAnswer(proto: answer).outcome == .committed)
            } else {
                Issue.record("the request after the refused one got no answer: \(String(describing: results[8]))")
            }
        }
    }

    /// A request message naming more state refs than `limits.maxStateRefs` is not decoded (empty
    /// refs take 2 bytes on the wire and about 48 decoded): it is counted in its bytes and answered
    /// `too_many_state_refs`, as over HTTP, on a unary call and on a stream, which goes on. Before,
    /// the notary decoded every ref and then refused the first one's empty id (`invalid_state_ref`).
    @Test(.timeLimit(.minutes(2))) func aRequestNamingTooManyStateRefsIsRefusedUndecoded() async throws {
        try await withGRPCNotary { url, _ in
            var ids = Ids(seed: 73)
            var tooMany = Hawser_V1_NotarisationRequest()
            tooMany.txID = Data(repeating: 1, count: 32)
            tooMany.inputs = Array(repeating: Hawser_V1_StateRef(), count: 10_001)
            let (request, good) = (tooMany, signed(ids.hash(), inputs: [ids.ref()]).proto)
            try await withNotaryGRPCClient(url) { grpc in
                let notary = Hawser_V1_Notary.Client(wrapping: grpc)
                let unary = try await notary.notarise(request)
                #expect(unary.error.code == "too_many_state_refs")
                #expect(unary.error.message.contains("names 10001 state refs"), "\(unary.error.message)")
                let results = try await notary.stream([(7, request), (8, good)])
                #expect(results[7]?.error.code == "too_many_state_refs")
                #expect(results[8]?.answer.outcome.kind == .committed(.init()), "\(String(describing: results[8]))")
                // Bytes the count cannot read end the call undecoded: empty refs, then a bad byte.
                let bad = [UInt8]([0x0a, 0x00]) + Array(repeating: [0x12, 0x00], count: 5_000).flatMap { $0 } + [0xff]
                let refused = await #expect(throws: RPCError.self) {
                    try await grpc.unary(request: ClientRequest(message: bad), descriptor: Hawser_V1_Notary.Method.Notarise.descriptor,
                                         serializer: RawBytes(), deserializer: ProtobufDeserializer<Hawser_V1_NotarisationResult>(),
                                         options: .defaults) { try $0.message }
                }
                #expect(refused?.code == .invalidArgument, "\(String(describing: refused))")
            }
        }
    }

    /// Sends bytes as they are, whatever they hold.
    struct RawBytes: MessageSerializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    }

    /// Requests written to a stream at once are decided together, yet each gets its own result
    /// under its own id: forged ones their refusal, a double spend inside the group its conflict,
    /// and every other one its committed answer.
    @Test(.timeLimit(.minutes(2))) func requestsArrivingTogetherAreEachAnsweredOnTheirOwn() async throws {
        try await withGRPCNotary { url, _ in
            var ids = Ids(seed: 75)
            var requests = (0..<60).map { _ in signed(ids.hash(), inputs: [ids.ref()]) }
            let forged: Set<Int> = [10, 20, 59]
            for i in forged {
                requests[i] = .signed(txId: ids.hash(), inputs: [ids.ref()], requesterName: "O=Alice", key: alice,
                                      notary: SigningKey().publicKey)
            }
            requests[30] = signed(ids.hash(), inputs: requests[0].inputs)  // spends what the first spends
            let results = try await withNotaryGRPCClient(url) { grpc in
                try await Hawser_V1_Notary.Client(wrapping: grpc).stream(requests.enumerated().map { (UInt64(1000 + $0), $1.proto) })
            }
            #expect(results.count == 60)
            let verifier = AnswerVerifier(notaryKey: notaryKey.publicKey)
            var twinsCommitted = 0
            for (i, request) in requests.enumerated() {
                let result = results[UInt64(1000 + i)]?.result
                switch (i, result) {
                case (let i, .error(let error)?) where forged.contains(i):
                    #expect(error.code == "invalid_signature", "request \(i)")
                case (let i, .answer(let proto)?) where !forged.contains(i):
                    let answer = try NotarisationAnswer(proto: proto)
                    try verifier.verify(answer, for: request.txId)
                    if i == 0 || i == 30 {
                        // Groups in flight together may be appended in either order: one of the twins wins.
                        if answer.outcome.isCommitted { twinsCommitted += 1 }
                    } else {
                        #expect(answer.outcome == .committed, "request \(i)")
                    }
                default:
                    Issue.record("request \(i): \(String(describing: result))")
                }
            }
            #expect(twinsCommitted == 1, "exactly one of two transactions spending one input commits")
        }
    }

    /// The first address is a closed port, then the replica in use goes away: every call fails
    /// over to the next address, answers verified against the pinned key.
    @Test(.timeLimit(.minutes(3))) func callsFailOverWhenAReplicaGoesAway() async throws {
        let first = try await StandaloneNotary.start(grpc: true)
        let second = try await StandaloneNotary.start(grpc: true)
        let client = try NotaryClient(urls: [try closedURL(scheme: "grpc"), try #require(first.grpcURL), try #require(second.grpcURL)],
                                      notaryKey: notaryKey.publicKey,
                                      retryPolicy: RetryPolicy(baseBackoff: .milliseconds(20), attemptTimeout: .seconds(20)))
        var ids = Ids(seed: 73)
        let early = signed(ids.hash(), inputs: [ids.ref()])
        #expect(try await client.notarise(early).outcome == .committed)
        await first.stop()
        for _ in 0..<20 {
            #expect(try await client.notarise(signed(ids.hash(), inputs: [ids.ref()])).outcome == .committed)
        }
        try await client.shutdown()
        await second.stop()
        // The first replica decided the early request, the second every later one.
        #expect(try await first.store().outcome(of: early.txId) == .committed)
        #expect(try await second.store().outcome(of: early.txId) == nil)
    }

    /// Every replica of a JetStream cluster serves gRPC; callers spread over the replicas keep
    /// notarising when one replica is killed (its callers fail over to the others).
    @Test(.timeLimit(.minutes(4))) func everyClusterReplicaServesGRPCAndCallersFailOverWhenOneDies() async throws {
        let cluster = try await NotaryCluster.start(running: 0)
        let grpcPorts = try FreePorts.take(3)
        for replica in 0..<3 {
            var configuration = try NotaryConfiguration.load(cluster.config(replica))
            configuration.grpc = GRPCConfiguration()
            configuration.grpc?.port = grpcPorts[replica]
            try configuration.save(cluster.config(replica))
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for replica in 0..<3 { group.addTask { try await cluster.restart(replica) } }
                try await group.waitForAll()
            }
            let urls = grpcPorts.map { "grpc://127.0.0.1:\($0)" }
            // Client i starts at replica i and knows the others.
            let clients = try (0..<3).map { i in
                try NotaryClient(urls: Array(urls[i...] + urls[..<i]), notaryKey: notaryKey.publicKey,
                                 retryPolicy: RetryPolicy(maxAttempts: 20, baseBackoff: .milliseconds(20), attemptTimeout: .seconds(20),
                                                          deadline: .seconds(90)))
            }
            var ids = Ids(seed: 74)
            for round in 0..<2 {
                if round == 1 { cluster.kill(0) }
                let requests = (0..<30).map { _ in signed(ids.hash(), inputs: [ids.ref()]) }
                let outcomes = try await withThrowingTaskGroup(of: NotarisationOutcome.self) { group in
                    for (i, request) in requests.enumerated() {
                        let client = clients[i % 3]
                        group.addTask { try await client.notarise(request).outcome }
                    }
                    return try await group.reduce(into: [NotarisationOutcome]()) { $0.append($1) }
                }
                #expect(outcomes == Array(repeating: .committed, count: 30), "round \(round)")
            }
            for client in clients { try await client.shutdown() }
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    /// A node whose remote notary is given as a grpc:// address notarises its flows over gRPC.
    @Test(.timeLimit(.minutes(2))) func aNodesRemoteNotaryPortSpeaksGRPC() async throws {
        let notary = try await StandaloneNotary.start(grpc: true)
        try await withRemoteNode(urls: [try #require(notary.grpcURL)]) { _, parts, _ in
            let issued = try await parts.engine.run(IssueTokens(owner: "O=Alice", amount: 10))
            #expect(issued.status == .completed, "\(issued.error ?? "")")
        }
        await notary.stop()
    }

    /// The `grpc` section is validated at start-up, one sentence per problem.
    @Test func theGRPCSectionIsValidated() throws {
        var configuration = NotaryConfiguration()
        configuration.acceptAnyParty = true
        configuration.grpc = GRPCConfiguration()
        #expect(configuration.problems.isEmpty)
        configuration.grpc?.host = "localhost"
        configuration.grpc?.port = configuration.listen.port
        configuration.grpc?.maxMessageBytes = 10
        configuration.grpc?.maxConcurrentStreams = 0
        configuration.grpc?.maxInFlightPerStream = 0
        configuration.grpc?.maxInFlight = 0
        configuration.grpc?.idleTimeoutMillis = 5
        let problems = configuration.problems
        for option in ["grpc.host", "grpc.port", "grpc.maxMessageBytes", "grpc.maxConcurrentStreams", "grpc.maxInFlightPerStream",
                       "grpc.maxInFlight", "grpc.idleTimeoutMillis"] {
            #expect(problems.contains { $0.hasPrefix(option + " ") }, "\(option) not refused: \(problems)")
        }
        let dir = try TemporaryDirectory()
        try Data(#"{"acceptAnyParty": true, "grpc": {"port": 9191, "maxStreams": 3}}"#.utf8).write(to: URL(fileURLWithPath: dir.path + "/n.json"))
        #expect { try NotaryConfiguration.load(dir.path + "/n.json") } throws: {
            "\($0)".contains("unknown option `grpc.maxStreams`")
        }
        for url in ["grpc://127.0.0.1", "grpc://127.0.0.1:9090/v1", "ftp://127.0.0.1:1"] {
            #expect(throws: NotaryClientError.self) { try NotaryClient.addresses([url]) }
        }
        #expect(try NotaryClient.addresses(["grpc://127.0.0.1:9090/"]) == ["grpc://127.0.0.1:9090"])
        // A gRPC address is a notary address only: not an HTTP base URL (advertised, health, a standby's hint).
        #expect(throws: NotaryClientError.self) { try NotaryClient.baseURL("grpc://127.0.0.1:9090") }
        #expect(throws: NotaryClientError.self) { try NotaryClient(urls: ["grpc://127.0.0.1:9090", "http://127.0.0.1:8080"]) }
    }
}

/// Runs `body` with a gRPC client of the notary at `url` (`grpc://127.0.0.1:PORT`).
func withNotaryGRPCClient<T: Sendable>(_ url: String, _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
    let port = try #require(URL(string: url)?.port)
    return try await withGRPCClient(transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext),
                                    handleClient: body)
}

extension Hawser_V1_Notary.Client {
    /// Writes `requests` (id, request; nil: none) to one `NotariseStream` call at once and returns
    /// each result by its request's id.
    func stream(_ requests: [(UInt64, Hawser_V1_NotarisationRequest?)]) async throws -> [UInt64: Hawser_V1_NotarisationResult] {
        let items = requests.map { id, request in
            var item = Hawser_V1_StreamedRequest()
            item.id = id
            if let request { item.request = request }
            return item
        }
        return try await notariseStream(requestProducer: { writer in
            try await writer.write(contentsOf: items)
        }, onResponse: { response in
            try await response.messages.reduce(into: [UInt64: Hawser_V1_NotarisationResult]()) { $0[$1.id] = $1.result }
        })
    }
}

/// An in-process notary (`writeNotaryFiles`) that also serves gRPC on a free port, its `grpc`
/// section changed by `configure`: `body` gets its `grpc://` address and a client of its HTTP API.
func withGRPCNotary<T: Sendable>(configure: (inout GRPCConfiguration) -> Void = { _ in },
                                 _ body: @Sendable (String, any TestClientProtocol) async throws -> T) async throws -> T {
    let dir = try TemporaryDirectory()
    try writeNotaryFiles(in: dir.path) { configuration in
        var grpc = GRPCConfiguration()
        grpc.port = 0
        configure(&grpc)
        configuration.grpc = grpc
    }
    let configuration = try NotaryConfiguration.load(dir.path + "/hawser.json")
    let ports = AsyncStream.makeStream(of: Int.self)
    let (app, _) = try await NotaryNode.application(configuration: configuration, baseDirectory: dir.path, logger: quietLogger,
                                                    onGRPCListening: { ports.continuation.yield($0) })
    return try await app.test(.live) { client in
        var listening = ports.stream.makeAsyncIterator()
        let port = try #require(await listening.next())
        return try await body("grpc://127.0.0.1:\(port)", client)
    }
}
