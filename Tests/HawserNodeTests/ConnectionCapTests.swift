import Foundation
import HawserCore
@testable import HawserNode
import HawserTestSupport
import NIOCore
import Prometheus
import Testing

/// A listener holds at most its cap of connections: one more is closed as soon as it is accepted,
/// and a connection that closes gives its place back. Before the cap, 21,000 idle connections
/// took every file descriptor of a notary (found from outside) and it answered nobody.
@Suite(.timeLimit(.minutes(5))) struct ConnectionCapTests {
    @Test func theHTTPListenerClosesAConnectionOverItsCap() async throws {
        // A header timeout far beyond the test's reads: a connection closed here was closed by the cap.
        try await withLiveNotary({ $0.http.maxConnections = 4; $0.http.headerTimeoutMillis = 600_000 }) { port in
            // Connections are answered until the cap is full (the test harness may hold one of
            // its own); the next is closed without a byte.
            var held = [RawConnection]()
            var closedWithoutAnswer = false
            for _ in 0...4 {
                let connection = try await RawConnection(port: port)
                let answer = await connection.send("GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                    ? await connection.readResponse(within: .seconds(60)) : ""
                if answer.isEmpty {
                    closedWithoutAnswer = await connection.read(within: .seconds(60)).closed
                    break
                }
                #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
                held.append(connection)
            }
            #expect(closedWithoutAnswer)
            let reader = try #require(held.last)
            let metrics = await Self.metrics(on: reader)
            #expect(Self.value(#"hawser_connections_open{listener="http"}"#, in: metrics) == 4, "\(metrics)")
            #expect((Self.value(#"hawser_connections_refused_total{listener="http"}"#, in: metrics) ?? 0) >= 1, "\(metrics)")

            // Closed, a held connection's place is free again (once the server has seen it close).
            held.first?.close()
            let admitted = await Self.admitted(port: port) { connection in
                guard await connection.send("GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n") else { return false }
                return await connection.readResponse().hasPrefix("HTTP/1.1 200")
            }
            #expect(admitted)
        }
    }

    @Test func theGRPCListenerClosesAConnectionOverItsCap() async throws {
        let grpcPort = try #require(try FreePorts.take(1).first)
        try await withLiveNotary({
            $0.grpc = GRPCConfiguration()
            $0.grpc?.port = grpcPort
            $0.grpc?.maxConnections = 1
            $0.http.headerTimeoutMillis = 600_000
        }) { port in
            // An admitted connection hears the server's HTTP/2 SETTINGS at once; one over the cap is closed.
            // (The gRPC listener may start listening after the HTTP API.)
            var connected: RawConnection?
            try await eventually("the gRPC listener listens") {
                connected = try? await RawConnection(port: grpcPort)
                return connected != nil
            }
            let held = try #require(connected)
            let settings = await held.read(within: .seconds(2))
            #expect(!settings.closed && !settings.bytes.isEmpty)
            let over = try await RawConnection(port: grpcPort)
            let answer = await over.read(within: .seconds(60))
            #expect(answer.closed && answer.bytes.isEmpty)

            let reader = try await RawConnection(port: port)
            let metrics = await Self.metrics(on: reader)
            #expect(Self.value(#"hawser_connections_open{listener="grpc"}"#, in: metrics) == 1, "\(metrics)")
            #expect(Self.value(#"hawser_connections_refused_total{listener="grpc"}"#, in: metrics) == 1, "\(metrics)")

            held.close()
            let admitted = await Self.admitted(port: grpcPort) { connection in
                let read = await connection.read(within: .seconds(2))
                return !read.closed && !read.bytes.isEmpty
            }
            #expect(admitted)
        }
    }

    /// The open-file limit must hold every listener's cap and the process's own files.
    /// One address holds at most its share: one host that opened 1,024 idle connections to a
    /// node's peer listener kept every new peer out (found from outside). Another address still
    /// gets in, and a place given back is free again.
    @Test func oneAddressHoldsAtMostItsShare() {
        let cap = ListenerCap(limit: 10, listener: "p2p", option: "network.listen.maxConnections",
                              perSource: (3, "network.listen.maxConnectionsPerAddress"), registry: PrometheusCollectorRegistry(), logger: quietLogger)
        #expect((0..<3).allSatisfy { _ in cap.admit(source: "10.0.0.1") })
        #expect(!cap.admit(source: "10.0.0.1"))
        #expect(cap.admit(source: "10.0.0.2"))
        cap.release(source: "10.0.0.1")
        #expect(cap.admit(source: "10.0.0.1"))
        // The listener's own cap still holds over all addresses.
        #expect((3...8).allSatisfy { cap.admit(source: "10.0.1.\($0)") })
        #expect(!cap.admit(source: "10.0.2.1"))
        #expect(SourceAddress.group(try? SocketAddress(ipAddress: "2001:db8:1:2:3:4:5:6", port: 1)) == "2001:db8:1:2::/64")
    }

    @Test func capsThatDoNotFitUnderTheOpenFileLimitAreRefused() {
        #expect(OpenFileLimit.raise(toFit: [("http.maxConnections", 16)]) == nil)
        let problem = OpenFileLimit.raise(toFit: [("http.maxConnections", 1_000_000), ("grpc.maxConnections", 1_000_000)])
        #expect(problem?.hasPrefix("http.maxConnections (1000000) + grpc.maxConnections (1000000) + 1024 files for the process's own use need 2001024 open files") == true,
                "\(problem ?? "nil")")
    }

    /// `hawser notary run` with caps the open-file limit cannot hold refuses to start (exit 1),
    /// says why, and makes no data directory.
    @Test func aNotaryWhoseCapsDoNotFitRefusesToStart() async throws {
        let dir = try TemporaryDirectory()
        try writeNotaryFiles(in: dir.path) {
            $0.http.maxConnections = 1_000_000
            $0.grpc = GRPCConfiguration()
            $0.grpc?.port = 0
            $0.grpc?.maxConnections = 1_000_000
        }
        let (status, output) = try await HawserProcess.run(["notary", "run", "--config", dir.path + "/hawser.json"])
        #expect(status == 1)
        #expect(output.contains("http.maxConnections (1000000) + grpc.maxConnections (1000000) + 1024 files for the process's own use need 2001024 open files"),
                "\(output)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/" + NotaryConfiguration().dataDirectory))
    }

    @Test func aCapOutsideItsRangeIsRefused() {
        var configuration = NotaryConfiguration()
        configuration.acceptAnyParty = true
        configuration.http.maxConnections = 0
        configuration.grpc = GRPCConfiguration()
        configuration.grpc?.maxConnections = 1_000_001
        #expect(configuration.problems.contains("http.maxConnections must be 1...1000000"))
        #expect(configuration.problems.contains("grpc.maxConnections must be 1...1000000"))
    }

    private static func metrics(on connection: RawConnection) async -> String {
        guard await connection.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") else { return "" }
        return await connection.readResponse()
    }

    /// The value of the series named `series` (name and labels) in a Prometheus text answer.
    private static func value(_ series: String, in metrics: String) -> Double? {
        metrics.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
    }

    /// Whether a new connection is served within a bounded number of tries: a place given back is
    /// free once the server has handled the close, which a new connection may overtake.
    private static func admitted(port: Int, _ served: (RawConnection) async -> Bool) async -> Bool {
        for _ in 0..<50 {
            guard let connection = try? await RawConnection(port: port) else { continue }
            if await served(connection) { return true }
        }
        return false
    }
}
