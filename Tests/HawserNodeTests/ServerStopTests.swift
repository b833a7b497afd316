import Foundation
import Hummingbird
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing
@testable import HawserNode
#if canImport(Glibc)
import Glibc
#endif

/// A process whose service fails stops its other services, its servers among them. Cancelled
/// while connections arrived, a server (gRPC's transport, Hummingbird's) left an accepted
/// connection's writer unfinished and NIO stopped the process ("Deinited NIOAsyncWriter without
/// calling finish()", then a backtrace of 13 to 50 s before a supervisor could start it again): a
/// notary replica whose stream was deleted while clients connected crashed in two of three tries.
@Suite(.timeLimit(.minutes(2))) struct ServerStopTests {
    @Test func aListenerCancelledWhileConnectionsArriveStopsWithoutCrashing() async throws {
        for _ in 0..<20 {
            let (ports, port) = AsyncStream.makeStream(of: Int.self)
            let listener = GRPCListener(host: "127.0.0.1", port: 0, maxMessageBytes: 1 << 20, maxMessageBytesInFlight: 1 << 24,
                                        cap: ListenerCap(limit: 1_000, listener: "grpc", option: "grpc.maxConnections",
                                                           registry: PrometheusCollectorRegistry(), logger: quietLogger),
                                        calls: ListenerCap(limit: 1_000, of: .calls, listener: "grpc", option: "grpc.maxCalls",
                                                           registry: PrometheusCollectorRegistry(), logger: quietLogger),
                                        maxConcurrentStreams: 16, idleTimeout: .seconds(60), timeouts: HTTPSettings(),
                                        services: [], draining: GRPCDraining(), logger: quietLogger, onListening: { port.yield($0) })
            let serving = Task { try await listener.run() }
            var iterator = ports.makeAsyncIterator()
            let bound = try #require(await iterator.next())
            let storm = ConnectionStorm(port: bound)
            await storm.waitForConnections(10)
            serving.cancel()
            // It ends as on a graceful shutdown, with nothing thrown.
            try await serving.value
            storm.stop()
        }
    }

    @Test func anApplicationWhoseServiceFailsWhileConnectionsArriveStopsWithItsError() async throws {
        for _ in 0..<20 {
            let (ports, port) = AsyncStream.makeStream(of: Int.self)
            let (failures, fail) = AsyncStream.makeStream(of: Void.self)
            let app = GracefulApplication(Application(router: Router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                                      services: [FailingService(failures: failures)],
                                                      onServerRunning: { port.yield($0.localAddress?.port ?? 0) }, logger: quietLogger))
            let serving = Task { try await app.run() }
            var iterator = ports.makeAsyncIterator()
            let bound = try #require(await iterator.next())
            let storm = ConnectionStorm(port: bound)
            await storm.waitForConnections(10)
            fail.finish()
            await #expect(throws: FailingService.Failure.self) { try await serving.value }
            storm.stop()
        }
    }
}

/// Fails once `failures` ends.
private struct FailingService: Service {
    struct Failure: Error {}
    let failures: AsyncStream<Void>

    func run() async throws {
        for await _ in failures {}
        throw Failure()
    }
}

/// Threads that open and close TCP connections to a port as fast as they can until stopped.
private final class ConnectionStorm: Sendable {
    private let stopped = Atomic(false)
    private let made = Atomic(0)
    private let done = DispatchGroup()

    init(port: Int) {
        for _ in 0..<4 {
            done.enter()
            Thread.detachNewThread { [self] in
                defer { done.leave() }
                while !stopped.load(ordering: .relaxed) {
                    if Self.connect(port: port) { made.add(1, ordering: .relaxed) }
                }
            }
        }
    }

    func waitForConnections(_ count: Int) async {
        while made.load(ordering: .relaxed) < count { await Task.yield() }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        done.wait()
    }

    private static func connect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // A connect the full accept queue drops is retried by the kernel after a second: give up sooner.
        var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
