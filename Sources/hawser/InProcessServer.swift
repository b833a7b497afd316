import Logging
import ServiceLifecycle

/// A notary or node run inside a tool's own process (the benchmarks), for the duration of a body.
enum InProcessServer {
    /// Builds a server with `make` (given the callback it reports its port to), runs it, calls
    /// `body` with its port once it listens, and then shuts it down gracefully, whether `body`
    /// returned or threw. Cancelling the server's task instead would be a crash-stop: Hummingbird
    /// logs it as an error ("Waiting on child channel: CancellationError()").
    static func with<T: Sendable>(logger: Logger,
                                  make: (@escaping @Sendable (Int) async -> Void) async throws -> any Service,
                                  _ body: (Int) async throws -> T) async throws -> T {
        let ports = AsyncStream.makeStream(of: Int.self)
        let services = ServiceGroup(configuration: .init(services: [try await make { ports.continuation.yield($0) }], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // A server that stops (or fails to start) ends the wait for its port.
                defer { ports.continuation.finish() }
                try await services.run()
            }
            var outcome: Result<T, any Error>?
            var listening = ports.stream.makeAsyncIterator()
            if let port = await listening.next() {
                do { outcome = .success(try await body(port)) } catch { outcome = .failure(error) }
            }
            await services.triggerGracefulShutdown()
            do {
                try await group.waitForAll()
            } catch {
                if case .failure = outcome {} else { outcome = .failure(error) }  // the body's error comes first
            }
            guard let outcome else { throw CLIError("the server stopped before it listened") }
            return try outcome.get()
        }
    }
}
