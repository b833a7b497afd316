import GRPCCore
import GRPCNIOTransportHTTP2
import HawserCore
import HawserWire
import Synchronization

/// One gRPC connection to one notary address (`grpc://host:port`) and the one `NotariseStream`
/// call that every request to that address shares: each request goes out with an id of its own
/// and its caller waits for the result with that id. It knows nothing of retries, failover or
/// verification (`NotaryClient` does that, for HTTP and gRPC alike); it reports a failed call, a
/// stream that ended and a request not answered in time as errors, and opens a new stream for the
/// next request after one ended.
final class GRPCNotaryChannel: Sendable {
    typealias Transport = HTTP2ClientTransport.Posix

    /// The request was sent but no result came within the attempt's time.
    struct TimedOut: Error, CustomStringConvertible {
        var address: String
        var description: String { "no answer from \(address) in time" }
    }

    /// The stream ended (the server stopped, the connection closed) before the result came.
    struct StreamEnded: Error, CustomStringConvertible {
        var address: String
        var cause: (any Error)?
        var description: String { "the gRPC stream to \(address) ended\(cause.map { ": \($0)" } ?? "")" }
    }

    let address: String
    private let grpc: GRPCClient<Transport>
    private let connections: Task<Void, Never>
    private let state = Mutex(State())

    private struct State {
        var stream: NotaryStream?
        var closed = false
    }

    /// `host` and `port` of a `grpc://` base URL.
    init(address: String, host: String, port: Int) throws {
        self.address = address
        let transport = try HTTP2ClientTransport.Posix(
            target: .dns(host: host, port: port), transportSecurity: .plaintext,
            config: .defaults { config in
                // Reconnect soon after a replica comes back; the retry policy paces the calls.
                config.backoff.initial = .milliseconds(100)
                config.backoff.max = .seconds(2)
            })
        let grpc = GRPCClient(transport: transport)
        self.grpc = grpc
        connections = Task { try? await grpc.runConnections() }
    }

    /// Sends `request` on the shared stream and waits at most `timeout` for its result.
    func notarise(_ request: Hawser_V1_NotarisationRequest, timeout: Duration) async throws -> Hawser_V1_NotarisationResult {
        let stream = try state.withLock { state throws(StreamEnded) -> NotaryStream in
            guard !state.closed else { throw StreamEnded(address: address, cause: CancellationError()) }
            if let stream = state.stream, stream.isOpen { return stream }
            let stream = NotaryStream(address: address, client: Hawser_V1_Notary.Client(wrapping: grpc))
            state.stream = stream
            return stream
        }
        return try await stream.send(request, timeout: timeout)
    }

    /// How many requests wait for their results on the current stream.
    var waitingCount: Int { state.withLock { $0.stream?.waitingCount ?? 0 } }

    /// The notary's name and public key, as this address states them.
    func identity(timeout: Duration) async throws -> Hawser_V1_Party {
        var options = CallOptions.defaults
        options.timeout = timeout
        options.waitForReady = false  // a replica that is down fails at once: the next address is asked
        return try await Hawser_V1_Notary.Client(wrapping: grpc).identity(Hawser_V1_IdentityRequest(), options: options)
    }

    /// Ends the stream and the connection; waiting callers fail with `StreamEnded`.
    func close() async {
        let stream = state.withLock { state in
            state.closed = true
            return state.stream
        }
        stream?.end(StreamEnded(address: address, cause: CancellationError()))
        grpc.beginGracefulShutdown()
        await connections.value
    }
}

/// One `NotariseStream` call: the requests waiting for their results, by id. Results come in any
/// order. A request whose time ran out, or whose caller was cancelled, is forgotten at once (a
/// late result for it is dropped); its timer runs on `Deadlines.shared`, one sleeping task for
/// every deadline of the process.
final class NotaryStream: Sendable {
    let address: String
    /// Requests not yet written; those posted together go out in one write.
    private let outgoing = Mailbox<Hawser_V1_StreamedRequest>()
    private let state = Mutex(State())

    private struct Waiting {
        var continuation: CheckedContinuation<Hawser_V1_NotarisationResult, any Error>
        var timer: Deadlines.Handle
    }
    private struct State {
        var nextId: UInt64 = 1
        var waiting: [UInt64: Waiting] = [:]
        var ended: (any Error)?
    }

    init(address: String, client: Hawser_V1_Notary.Client<GRPCNotaryChannel.Transport>) {
        self.address = address
        var options = CallOptions.defaults
        options.waitForReady = false  // a replica that is down fails the stream at once
        Task { [self] in
            do {
                try await client.notariseStream(options: options, requestProducer: { [outgoing] writer in
                    while let requests = await outgoing.takeAll() { try await writer.write(contentsOf: requests) }
                }, onResponse: { response in
                    for try await message in response.messages { self.deliver(message) }
                })
                end(GRPCNotaryChannel.StreamEnded(address: address, cause: nil))
            } catch {
                end(GRPCNotaryChannel.StreamEnded(address: address, cause: error))
            }
        }
    }

    var isOpen: Bool { state.withLock { $0.ended == nil } }

    /// How many requests wait for their results.
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Sends `request` and waits for its result: at most `timeout` (then `TimedOut`), and only
    /// while the calling task is not cancelled (then `CancellationError`, at once).
    func send(_ request: Hawser_V1_NotarisationRequest, timeout: Duration) async throws -> Hawser_V1_NotarisationResult {
        var message = Hawser_V1_StreamedRequest()
        message.request = request
        message.id = state.withLock { state in
            defer { state.nextId += 1 }
            return state.nextId
        }
        let id = message.id
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let refused = state.withLock { state -> (any Error)? in
                    if let ended = state.ended { return ended }
                    // Scheduled under the lock so that the entry holds its timer from the start;
                    // `Deadlines` runs its actions outside its own lock, so this cannot deadlock.
                    let timer = Deadlines.shared.schedule(after: timeout) { [self] in
                        finish(id, GRPCNotaryChannel.TimedOut(address: address))
                    }
                    state.waiting[id] = Waiting(continuation: continuation, timer: timer)
                    return nil
                }
                if let refused { return continuation.resume(throwing: refused) }
                // A cancellation that came before the entry existed found nothing to release.
                if Task.isCancelled { return finish(id, CancellationError()) }
                outgoing.post(message)
            }
        } onCancel: {
            finish(id, CancellationError())
        }
    }

    /// Fails every waiting request with `error` and refuses new ones.
    func end(_ error: any Error) {
        let waiting = state.withLock { state -> [Waiting] in
            if state.ended == nil { state.ended = error }
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        outgoing.close()
        for item in waiting {
            Deadlines.shared.cancel(item.timer)
            item.continuation.resume(throwing: error)
        }
    }

    private func deliver(_ message: Hawser_V1_StreamedResult) {
        guard let waiting = state.withLock({ $0.waiting.removeValue(forKey: message.id) }) else { return }
        Deadlines.shared.cancel(waiting.timer)
        waiting.continuation.resume(returning: message.result)
    }

    /// Releases the caller of request `id` with `error`, if it still waits.
    private func finish(_ id: UInt64, _ error: any Error) {
        guard let waiting = state.withLock({ $0.waiting.removeValue(forKey: id) }) else { return }
        Deadlines.shared.cancel(waiting.timer)
        waiting.continuation.resume(throwing: error)
    }
}
