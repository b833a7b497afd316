import Embedded
import GRPCCore
import HawserCore
@testable import HawserNode
import HawserTestSupport
import HawserWire
import Metrics
import Notary
import Synchronization
import Testing

/// The server side of a `NotariseStream` call that ends early (the client cancelled it, or its
/// connection broke): gRPC reports it on the call's cancellation handle, and the requests the
/// stream was still deciding are released at once, not held until the notary's request timeout.
/// On a graceful shutdown the same handle fires, and then the call finishes what it read.
@Suite(.timeLimit(.minutes(1)))
struct GRPCStreamCancellationTests {
    /// Collects what the service writes back.
    final class Results: RPCWriterProtocol, Sendable {
        let written = Mutex<[Hawser_V1_StreamedResult]>([])
        func write(_ element: Hawser_V1_StreamedResult) async throws { written.withLock { $0.append(element) } }
        func write(contentsOf elements: some Sequence<Hawser_V1_StreamedResult>) async throws {
            written.withLock { $0 += elements }
        }
        var all: [Hawser_V1_StreamedResult] { written.withLock { $0 } }
    }

    /// A notary whose replica stopped after deciding one request, with a request timeout of an
    /// hour: five requests read from a half-closed stream are appended and then wait. `body` gets
    /// a wait for the call's handler to return, the call's cancellation handle, the draining flag,
    /// what was written, and a way to start the replica again.
    func withStalledCall(_ body: (_ returned: () async -> Void, _ handle: ServerContext.RPCCancellationHandle,
                                  _ draining: GRPCDraining, _ results: Results, _ restart: () -> Void) async throws -> Void) async throws {
        let dir = try TemporaryDirectory()
        var limits = NotaryLimits()
        limits.requestTimeout = .seconds(3600)
        let log = try SQLiteLog(path: dir.path + "/log.sqlite")
        let assembly = NotaryAssembly(name: "O=Test Notary", signer: notaryKey, authorisedParties: [Party(name: "O=Alice", publicKey: alice.publicKey)],
                                      limits: limits, log: log, store: try SQLiteNotaryStore(path: dir.path + "/notary.sqlite"),
                                      // The suite's process loads two cores: the replica's start
                                      // once took longer than the default 10 s (no_quorum).
                                      appendTimeout: .seconds(120),
                                      metrics: NotaryMetrics(factory: NOOPMetricsHandler.instance), logger: quietLogger)
        let draining = GRPCDraining()
        let service = NotaryGRPCService(serving: ServingState(.active(NotaryTerm(assembly))), maxInFlightPerStream: 16,
                                        inFlight: InFlightSlots(1_000), draining: draining, maxStateRefs: 10_000)
        var ids = Ids(seed: 94)
        let (requests, sender) = AsyncThrowingStream.makeStream(of: Hawser_V1_StreamedRequest.self)
        for id in 1...5 {
            var item = Hawser_V1_StreamedRequest()
            item.id = UInt64(id)
            item.request = signed(ids.hash(), inputs: [ids.ref()]).proto
            sender.yield(item)
        }
        sender.finish()  // the client half-closed: only the cancellation says it went away
        let handle = ServerContext.RPCCancellationHandle()
        let context = ServerContext(descriptor: Hawser_V1_Notary.Method.NotariseStream.descriptor, remotePeer: "test",
                                    localPeer: "test", cancellation: handle)
        let results = Results()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await assembly.appender.run() }
            // One request decided while the replica runs (the appender learns the log's end).
            let replica = Task { try await assembly.replica.run() }
            #expect(try await assembly.notary.notarise(signed(ids.hash(), inputs: [ids.ref()])).outcome == .committed)
            replica.cancel()
            _ = await replica.result
            let decided = try await log.lastPosition()
            let call = Task {
                await #expect(throws: Never.self) {
                    try await service.notariseStream(request: RPCAsyncSequence(wrapping: requests), response: RPCWriter(wrapping: results),
                                                     context: context)
                }
            }
            // The requests are durable in the log, waiting for a decision that does not come.
            try await eventually("the requests are appended") { try await log.lastPosition() > decided }
            try await body({ await call.value }, handle, draining, results, { group.addTask { try await assembly.replica.run() } })
            group.cancelAll()
        }
    }

    @Test func aCancelledCallsRequestsAreReleasedAtOnce() async throws {
        try await withStalledCall { returned, handle, _, results, _ in
            handle.cancel()
            await returned()  // nothing else ends it within the time limit
            #expect(results.all.allSatisfy { $0.result.error.code == ErrorCode.shuttingDown.rawValue }, "\(results.all)")
        }
    }

    @Test func onAGracefulShutdownTheCallFinishesWhatItRead() async throws {
        try await withStalledCall { returned, handle, draining, results, restart in
            draining.begin()
            handle.cancel()
            restart()  // the requests are decided only now: the call still waits for them
            await returned()
            #expect(results.all.map(\.id).sorted() == [1, 2, 3, 4, 5])
            #expect(results.all.allSatisfy { $0.result.answer.hasOutcome }, "\(results.all)")
        }
    }

    /// A result holds its request's place until it is written: a client that sends and never
    /// reads its results is held back at `maxInFlightPerStream`. Before, a place was given back as
    /// its request was decided, and every result the client did not read was kept in the notary's
    /// memory: anyone could send refused requests forever and grow it without bound.
    @Test func aClientThatDoesNotReadItsResultsIsHeldBack() async throws {
        let dir = try TemporaryDirectory()
        let stalled = try RefusedStream(count: 200, seed: 95, dir: dir.path)
        let service = NotaryGRPCService(serving: ServingState(.active(NotaryTerm(stalled.assembly))), maxInFlightPerStream: 4,
                                        inFlight: InFlightSlots(1_000), draining: GRPCDraining(),
                                        maxStateRefs: 10_000)
        let writer = StalledWriter()
        let (context, handle) = context()
        let call = Task {
            try await service.notariseStream(request: stalled.requests, response: RPCWriter(wrapping: writer), context: context)
        }
        defer { call.cancel() }
        // The first write stalls, as a connection whose client reads nothing does.
        await writer.firstWrite()
        // Four places, and one request read that waits for a place: a sixth read is the defect.
        let sixthRead: Bool? = try await within(.seconds(2)) {
            while stalled.read <= 5 { try await Task.sleep(for: .milliseconds(5)) }
            return true
        }
        let heldBack = sixthRead == nil
        #expect(heldBack, "\(stalled.read) of 200 requests read with 4 places")
        // The client goes away: the call ends, its read no longer waiting for a place. (It waited
        // for ever, and the notary then never stopped on SIGTERM: found from outside.)
        handle.cancel()
        let ended: Bool? = try await within(.seconds(30)) { _ = await call.result; return true }
        #expect(ended == true)
    }
}

extension GRPCStreamCancellationTests {
    /// A notary in `dir`, and `count` streamed requests from a party it does not know (each
    /// refused at once, without the log) whose reads are counted.
    final class RefusedStream: Sendable {
        let assembly: NotaryAssembly
        let requests: RPCAsyncSequence<Hawser_V1_StreamedRequest, any Error>
        private final class Reads: Sendable { let count = Atomic(0) }
        private let reads = Reads()
        var read: Int { reads.count.load(ordering: .relaxed) }

        init(count: Int, seed: UInt64, dir: String) throws {
            assembly = NotaryAssembly(name: "O=Test Notary", signer: notaryKey, authorisedParties: [Party(name: "O=Alice", publicKey: alice.publicKey)],
                                      limits: NotaryLimits(), log: try SQLiteLog(path: dir + "/log.sqlite"),
                                      store: try SQLiteNotaryStore(path: dir + "/notary.sqlite"),
                                      metrics: NotaryMetrics(factory: NOOPMetricsHandler.instance), logger: quietLogger)
            var ids = Ids(seed: seed)
            let stranger = SigningKey()
            let items = (1...count).map { id in
                var item = Hawser_V1_StreamedRequest()
                item.id = UInt64(id)
                item.request = NotarisationRequest.signed(txId: ids.hash(), inputs: [ids.ref()], references: [], timeWindow: nil,
                                                          requesterName: "O=Mallory", key: stranger, notary: notaryKey.publicKey).proto
                return item
            }
            // Each item is handed out as the notary reads it: the count is of reads, not of what was queued.
            let reads = self.reads
            requests = RPCAsyncSequence(wrapping: AsyncThrowingStream<Hawser_V1_StreamedRequest, any Error> {
                let index = reads.count.add(1, ordering: .relaxed).oldValue
                return index < items.count ? items[index] : nil
            })
        }
    }

    func context() -> (ServerContext, ServerContext.RPCCancellationHandle) {
        let handle = ServerContext.RPCCancellationHandle()
        return (ServerContext(descriptor: Hawser_V1_Notary.Method.NotariseStream.descriptor, remotePeer: "test",
                              localPeer: "test", cancellation: handle), handle)
    }

    /// The streams together hold no more than `grpc.maxInFlight` requests: a client that reads no
    /// results holds at most its own stream's places, and those of every stream once enough such
    /// clients connect (then no stream is read until one is written back or its call ends).
    /// Before, each stream had only its own limit: `grpc.maxCalls` streams that read nothing held
    /// about 6 GB at the defaults.
    @Test func theStreamsTogetherHoldNoMoreThanTheNotarysPlaces() async throws {
        let dir = try TemporaryDirectory(), otherDir = try TemporaryDirectory()
        let stalled = try RefusedStream(count: 200, seed: 96, dir: dir.path)
        let places = InFlightSlots(4)
        let service = NotaryGRPCService(serving: ServingState(.active(NotaryTerm(stalled.assembly))), maxInFlightPerStream: 16,
                                        inFlight: places, draining: GRPCDraining(), maxStateRefs: 10_000)
        let writer = StalledWriter()
        let (stalledContext, stalledHandle) = context()
        let first = Task {
            try await service.notariseStream(request: stalled.requests, response: RPCWriter(wrapping: writer), context: stalledContext)
        }
        defer { first.cancel() }
        await writer.firstWrite()
        // The four places of the notary are the stalled stream's: another stream gets none.
        let other = try RefusedStream(count: 3, seed: 97, dir: otherDir.path)
        let results = Results()
        let (otherContext, _) = context()
        let second = Task {
            try await service.notariseStream(request: other.requests, response: RPCWriter(wrapping: results), context: otherContext)
        }
        defer { second.cancel() }
        let answeredMeanwhile: Bool? = try await within(.seconds(2)) {
            while results.all.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
            return true
        }
        #expect(answeredMeanwhile == nil, "\(results.all.count) results on a second stream while the first held the notary's 4 places")
        #expect(stalled.read <= 5)
        // The stalled client goes away: its places come back, and the other stream is answered.
        stalledHandle.cancel()
        _ = await first.result
        try await second.value
        #expect(results.all.map(\.id).sorted() == [1, 2, 3])
        #expect(places.free == 4, "every place given back")
    }
}

/// A response writer whose writes never complete: a client that reads no results.
private final class StalledWriter: RPCWriterProtocol, Sendable {
    private let started = AsyncStream<Void>.makeStream()

    func firstWrite() async { for await _ in started.stream { return } }

    func write(_ element: Hawser_V1_StreamedResult) async throws { try await write(contentsOf: [element]) }

    func write(contentsOf elements: some Sequence<Hawser_V1_StreamedResult>) async throws {
        started.continuation.yield()
        try await Task.sleep(for: .seconds(3600))
    }
}
