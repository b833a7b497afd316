import Foundation
import HawserCore
import JetStream
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Client authentication a test server demands.
public enum TestServerAuth: Sendable {
    case userPassword(String, String)
    case token(String)
}

/// Real `nats-server` processes on loopback, on free ports, in a temporary directory.
///
/// A watchdog shell holds a pipe from this process: if the test process dies without cleaning up,
/// the pipe closes and the watchdog kills the servers. ``stop()`` kills them in the normal case.
public final class NATSCluster: @unchecked Sendable {
    public final class Server: @unchecked Sendable {
        public let name: String
        public let port: Int
        public let clusterPort: Int?
        public let configPath: String
        let process: Process

        init(name: String, port: Int, clusterPort: Int?, configPath: String, process: Process) {
            self.name = name
            self.port = port
            self.clusterPort = clusterPort
            self.configPath = configPath
            self.process = process
        }

        public var url: String { "nats://127.0.0.1:\(port)" }
        public var pid: Int32 { process.processIdentifier }
        public var isRunning: Bool { process.isRunning }

        public func kill9() {
            if process.isRunning {
                kill(pid, SIGKILL)
                _ = process.waitUntilGone()
            }
        }

        /// SIGSTOP: the server keeps its connections and state but does nothing until `resume()`.
        public func pause() { kill(pid, SIGSTOP) }
        public func resume() { kill(pid, SIGCONT) }
    }

    /// The server the tests run: `NATS_SERVER` if set (scripts/test.sh sets it to the current
    /// nats-server it installs with pip), else the first `nats-server` on the PATH.
    public static let executable: String = {
        if let chosen = ProcessInfo.processInfo.environment["NATS_SERVER"], !chosen.isEmpty { return chosen }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/usr/sbin"
        for directory in path.split(separator: ":") + ["/usr/sbin"] {
            let candidate = "\(directory)/nats-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "nats-server"
    }()

    /// The version `executable` reports, e.g. (2, 15, 1); (0, 0, 0) if it cannot be read.
    public static let version: (major: Int, minor: Int, patch: Int) = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--version"]
        guard let pipe = try? ChildProcesses.startWithOutputPipe(process, mergingErrors: true) else { return (0, 0, 0) }
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // "nats-server: v2.15.1"
        let numbers = text.split(separator: "v").last.map { $0.split(separator: ".").compactMap { Int($0.prefix { $0.isNumber }) } } ?? []
        guard numbers.count >= 3 else { return (0, 0, 0) }
        return (numbers[0], numbers[1], numbers[2])
    }()

    /// nats-server before 2.10 can store two concurrent appends that expect the same last
    /// sequence of a clustered stream's subject (the notary's log copes; docs/cluster.md).
    public static var enforcesConditionalAppends: Bool { version >= (2, 10, 0) }

    public let directory: URL
    public private(set) var servers: [Server] = []
    private var watchdog: ProcessWatchdog?
    private let lock = NSLock()

    public var urls: [String] { servers.map(\.url) }

    private init(directory: URL) {
        self.directory = directory
    }

    /// Starts `size` servers (clustered when `size > 1`) and waits until they serve clients and,
    /// with JetStream, until JetStream answers `$JS.API.INFO` on every server. `deadline` is for
    /// all of them: a loaded full run once took the default's earlier 30 s for two of three.
    public static func start(
        size: Int = 3, jetStream: Bool = true, auth: TestServerAuth? = nil, tls: Bool = false,
        deadline: Duration = .seconds(90)
    ) async throws -> NATSCluster {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nats-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cluster = NATSCluster(directory: dir)
        do {
            if tls { try cluster.makeCertificate() }
            let ports = try FreePorts.take(size * 2)
            let clientPorts = Array(ports[0..<size])
            let routePorts = Array(ports[size...])
            // A name of its own: servers of parallel tests' clusters keep dialling the route ports
            // of servers they lost, and one of ours may have taken such a port since. NATS refuses
            // a route whose cluster name differs; with one shared name the two clusters merged and
            // JetStream stayed unavailable (CI, 2 December).
            let clusterName = "hawser-test-\(UUID().uuidString.prefix(8))"
            for i in 0..<size {
                let name = "n\(i + 1)"
                var config = """
                    server_name: "\(name)"
                    listen: "127.0.0.1:\(clientPorts[i])"
                    log_file: "\(dir.path)/\(name).log"

                    """
                if jetStream {
                    config += """
                        jetstream {
                          store_dir: "\(dir.path)/\(name)"
                          max_memory_store: 268435456
                          max_file_store: 1073741824
                        }

                        """
                }
                if size > 1 {
                    let routes = routePorts.map { "\"nats-route://127.0.0.1:\($0)\"" }.joined(separator: ", ")
                    config += """
                        cluster {
                          name: "\(clusterName)"
                          listen: "127.0.0.1:\(routePorts[i])"
                          routes: [\(routes)]
                        }

                        """
                }
                if tls {
                    config += "tls { cert_file: \"\(cluster.certificatePath)\", key_file: \"\(cluster.keyPath)\" }\n"
                }
                switch auth {
                case .userPassword(let user, let password):
                    config += "authorization { user: \"\(user)\", password: \"\(password)\" }\n"
                case .token(let token):
                    config += "authorization { token: \"\(token)\" }\n"
                case nil:
                    break
                }
                let path = dir.appendingPathComponent("\(name).conf").path
                try config.write(toFile: path, atomically: true, encoding: .utf8)
                let server = try cluster.launch(
                    name: name, port: clientPorts[i], clusterPort: size > 1 ? routePorts[i] : nil, config: path)
                cluster.lock.withLock { cluster.servers.append(server) }
            }
            try cluster.startWatchdog()
            try await cluster.waitUntilReady(jetStream: jetStream, auth: auth, tls: tls, deadline: deadline)
            return cluster
        } catch {
            cluster.stop()
            throw error
        }
    }

    private func launch(name: String, port: Int, clusterPort: Int?, config: String) throws -> Server {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["-c", config]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try ChildProcesses.start { try process.run() }
        return Server(name: name, port: port, clusterPort: clusterPort, configPath: config, process: process)
    }

    /// Restarts a killed server with its old configuration and data.
    public func restart(_ server: Server) throws {
        let replacement = try launch(
            name: server.name, port: server.port, clusterPort: server.clusterPort, config: server.configPath)
        lock.withLock {
            if let i = servers.firstIndex(where: { $0 === server }) { servers[i] = replacement }
        }
        try startWatchdog()
    }

    private func startWatchdog() throws {
        let new = try ProcessWatchdog(killing: lock.withLock { servers.map(\.pid) })
        let old = lock.withLock { () -> ProcessWatchdog? in
            defer { watchdog = new }
            return watchdog
        }
        // The old one must not kill the servers still in use.
        old?.stop()
    }

    public var certificatePath: String { directory.appendingPathComponent("cert.pem").path }
    var keyPath: String { directory.appendingPathComponent("key.pem").path }

    /// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl tool.
    private func makeCertificate() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", keyPath, "-out", certificatePath,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try ChildProcesses.start { try process.run() }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestClusterError.notReady("openssl failed") }
    }

    private func waitUntilReady(jetStream: Bool, auth: TestServerAuth?, tls: Bool, deadline: Duration) async throws {
        let clock = ContinuousClock()
        let end = clock.now + deadline
        for server in servers {
            var lastError: (any Error)?
            while true {
                if clock.now > end {
                    throw TestClusterError.notReady("\(server.name): \(String(describing: lastError))")
                }
                if !server.isRunning { throw TestClusterError.notReady("\(server.name) exited; see \(directory.path)") }
                do {
                    var options = NATSOptions(servers: [server.url], connectTimeout: .seconds(2))
                    options.ignoreDiscoveredServers = true
                    options.reconnect.enabled = false
                    if tls { options.tls = try NATSOptions.tlsConfiguration(caFile: certificatePath) }
                    switch auth {
                    case .userPassword(let u, let p): (options.user, options.password) = (u, p)
                    case .token(let t): options.token = t
                    case nil: break
                    }
                    try await NATSClient.withConnection(options) { client in
                        guard jetStream else { return }
                        let reply = try await client.request("$JS.API.INFO", timeout: .seconds(2))
                        if reply.string.contains("\"error\"") { throw TestClusterError.notReady(reply.string) }
                    }
                    break
                } catch {
                    lastError = error
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    public func server(port: Int) -> Server? { lock.withLock { servers.first { $0.port == port } } }

    /// Kills every server and the watchdog and deletes the directory. Safe to call twice.
    public func stop() {
        let (all, dog) = lock.withLock { () -> ([Server], ProcessWatchdog?) in
            defer { (servers, watchdog) = ([], nil) }
            return (servers, watchdog)
        }
        dog?.stop()
        for s in all { s.kill9() }
        if ProcessInfo.processInfo.environment["KEEP_NATS_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(at: directory)
        }
    }

    deinit { stop() }

}

public enum TestClusterError: Error {
    case notReady(String)
}

/// Runs `body` with a started cluster and always stops it afterwards.
public func withNATSCluster<T>(
    size: Int = 3, jetStream: Bool = true, auth: TestServerAuth? = nil, tls: Bool = false,
    _ body: (NATSCluster) async throws -> T
) async throws -> T {
    // A port handed out as free can be taken by a parallel test before the server binds it;
    // starting again on new ports fixes that.
    var attempt = 0
    var started: NATSCluster?
    while started == nil {
        attempt += 1
        do {
            started = try await NATSCluster.start(size: size, jetStream: jetStream, auth: auth, tls: tls)
        } catch TestClusterError.notReady(let reason) where attempt < 3 && reason.contains("exited") {
            continue
        }
    }
    let cluster = started!
    defer { cluster.stop() }
    return try await body(cluster)
}
