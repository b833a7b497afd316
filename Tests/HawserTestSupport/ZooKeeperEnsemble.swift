import Foundation
import HawserCore
import Synchronization
import Testing
import ZooKeeper

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real ZooKeeper ensemble for integration tests: `QuorumPeerMain` processes from the Debian
/// `zookeeper` package on 127.0.0.1, on free ports, in a temporary directory.
public final class ZooKeeperEnsemble: Sendable {
    public struct Server: Sendable {
        public var id: Int
        public var clientPort: Int
        public var quorumPort: Int
        public var electionPort: Int
        public var home: URL
        public var address: ServerAddress { ServerAddress(host: "127.0.0.1", port: clientPort) }
    }

    public static let java = "/usr/bin/java"
    public static let classpath = ["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"]
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: java) && classpath.allSatisfy { FileManager.default.fileExists(atPath: $0) }
    }

    /// The ensemble of the running suite (see `EnsembleTrait`).
    @TaskLocal public static var current: ZooKeeperEnsemble?

    public let directory: URL
    public let servers: [Server]
    public let tickTimeMs: Int
    private let processes = Mutex<[Int: Process]>([:])
    /// One watchdog shell per server, reading a pipe this process holds: if the test process dies
    /// without stopping the ensemble, the pipe closes and the watchdog kills its server.
    private let watchdogs = Mutex<[Int: ProcessWatchdog]>([:])

    public var addresses: [ServerAddress] { servers.map(\.address) }
    public var connectString: String { addresses.map(\.description).joined(separator: ",") }

    /// Writes the configuration of `count` servers and starts them; returns once every one serves.
    public static func start(count: Int = 3, tickTimeMs: Int = 200) async throws -> ZooKeeperEnsemble {
        let ensemble = try ZooKeeperEnsemble(count: count, tickTimeMs: tickTimeMs)
        do {
            for server in ensemble.servers { try ensemble.startServer(server.id) }
            try await ensemble.waitUntilServing(ensemble.servers.map(\.id))
            return ensemble
        } catch {
            ensemble.stop()
            throw error
        }
    }

    private init(count: Int, tickTimeMs: Int) throws {
        self.tickTimeMs = tickTimeMs
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zookeeper-\(UUID().uuidString)")
        self.directory = directory
        let ports = try FreePorts.take(count * 3)
        servers = (0..<count).map { index in
            Server(id: index + 1, clientPort: ports[index * 3], quorumPort: ports[index * 3 + 1],
                   electionPort: ports[index * 3 + 2], home: directory.appendingPathComponent("zk\(index + 1)"))
        }
        let members = servers.map { "server.\($0.id)=127.0.0.1:\($0.quorumPort):\($0.electionPort)" }.joined(separator: "\n")
        for server in servers {
            let data = server.home.appendingPathComponent("data")
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            try "\(server.id)\n".write(to: data.appendingPathComponent("myid"), atomically: true, encoding: .utf8)
            let config = """
                tickTime=\(tickTimeMs)
                initLimit=10
                syncLimit=5
                dataDir=\(data.path)
                clientPort=\(server.clientPort)
                clientPortAddress=127.0.0.1
                minSessionTimeout=\(2 * tickTimeMs)
                maxSessionTimeout=60000
                admin.enableServer=false
                4lw.commands.whitelist=*
                forceSync=no
                \(members)

                """
            try config.write(to: server.home.appendingPathComponent("zoo.cfg"), atomically: true, encoding: .utf8)
        }
    }

    /// Starts (or restarts) server `id`; its output goes to `zkN/server.log`.
    public func startServer(_ id: Int) throws {
        let server = servers[id - 1]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.java)
        process.arguments = [
            "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djava.net.preferIPv4Stack=true", "-Dzookeeper.jmx.log4j.disable=true",
            // A server that misses an election round asks again after at most 2 s, not the
            // default 60 s (on a loaded machine a late starter could otherwise miss the wait).
            "-Dzookeeper.fastleader.maxNotificationInterval=2000",
            "-cp", Self.classpath.joined(separator: ":"),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", server.home.appendingPathComponent("zoo.cfg").path,
        ]
        let log = server.home.appendingPathComponent("server.log")
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try ChildProcesses.start { try process.run() }
        try? handle.close()
        processes.withLock { $0[id] = process }
        let watchdog = try ProcessWatchdog(killing: [process.processIdentifier])
        watchdogs.withLock { $0[id] = watchdog }
    }

    private func stopWatchdog(_ id: Int) { watchdogs.withLock { $0.removeValue(forKey: id) }?.stop() }

    /// `kill -9` server `id` and reaps it.
    public func kill(_ id: Int) {
        stopWatchdog(id)
        guard let process = processes.withLock({ $0.removeValue(forKey: id) }) else { return }
        Self.killAndReap(process)
    }

    /// SIGSTOP server `id`: it keeps its sockets but answers nothing, like a partitioned machine.
    public func pause(_ id: Int) {
        if let process = processes.withLock({ $0[id] }) { _ = Glibc.kill(process.processIdentifier, SIGSTOP) }
    }

    /// SIGCONT server `id`.
    public func resume(_ id: Int) {
        if let process = processes.withLock({ $0[id] }) { _ = Glibc.kill(process.processIdentifier, SIGCONT) }
    }

    /// Kills every server and removes the directory (keeps it if `ZK_KEEP_LOGS` is set).
    public func stop() {
        for id in watchdogs.withLock({ Array($0.keys) }) { stopWatchdog(id) }
        let all = processes.withLock { processes in
            defer { processes = [:] }
            return Array(processes.values)
        }
        for process in all { Self.killAndReap(process) }
        if ProcessInfo.processInfo.environment["ZK_KEEP_LOGS"] == nil {
            try? FileManager.default.removeItem(at: directory)
        }
    }

    public func serverID(of address: ServerAddress?) -> Int? {
        servers.first { $0.address == address }?.id
    }

    /// Polls each server with a client connection until it serves sessions (bounded by `timeout`).
    public func waitUntilServing(_ ids: [Int], timeout: Duration = .seconds(60)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        for id in ids {
            var configuration = ZooKeeperConfiguration(servers: [servers[id - 1].address])
            configuration.initialConnectTimeout = .seconds(1)
            configuration.sessionTimeout = .seconds(2)
            while true {
                if let client = try? await ZooKeeperClient.connect(configuration: configuration) {
                    await client.close()
                    break
                }
                if clock.now > deadline {
                    // The log's end, in the error: the ensemble's directory goes with the suite.
                    let log = servers[id - 1].home.path + "/server.log"
                    let tail = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(15)
                    throw EnsembleError("server \(id) is not serving after \(timeout); the end of \(log):\n" + tail.joined(separator: "\n"))
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// The server's `Mode:` line from the `srvr` four-letter command ("leader", "follower"), if it answers.
    public func mode(of id: Int) -> String? { srvr(id, "Mode: ") }

    /// The last transaction the server applied (`Zxid:` of `srvr`): every write to the ensemble,
    /// a session's creation and closing among them, raises it.
    public func zxid(of id: Int) -> Int64? { srvr(id, "Zxid: 0x").flatMap { Int64($0, radix: 16) } }

    /// The rest of the `srvr` line that starts with `prefix`, if the server answers.
    private func srvr(_ id: Int, _ prefix: String) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(servers[id - 1].clientPort).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0, write(fd, "srvr", 4) == 4 else { return nil }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { break }
            reply += chunk[0..<count]
        }
        let line = String(decoding: reply, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix(prefix) }
        return line.map { String($0.dropFirst(prefix.count)) }
    }

    /// The current leader's id, if one answers as leader.
    public func leader() -> Int? {
        servers.map(\.id).first { mode(of: $0) == "leader" }
    }

    private static func killAndReap(_ process: Process) {
        guard process.isRunning else { return }
        _ = Glibc.kill(process.processIdentifier, SIGKILL)
        _ = process.waitUntilGone()
    }
}

public struct EnsembleError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Starts one ensemble for a whole suite, publishes it as `ZooKeeperEnsemble.current`, and stops
/// it when the suite ends, whatever its tests did.
public struct EnsembleTrait: SuiteTrait, TestScoping {
    public init() {}
    public var isRecursive: Bool { false }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await EnsembleSlots.shared.withSlot {
            let ensemble = try await ZooKeeperEnsemble.start()
            defer { ensemble.stop() }
            try await ZooKeeperEnsemble.$current.withValue(ensemble) {
                try await function()
            }
        }
    }
}

/// At most two ensembles run at once in the test process. Each is three JVMs; six suites starting
/// theirs together on a 2-core machine starved every server's ticks, and elections that must be
/// confirmed within a session never led (`no A leading within 60 s`), while each suite alone passed.
public actor EnsembleSlots {
    public static let shared = EnsembleSlots(count: 2)
    private var free: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { free = count }

    /// Runs `body` holding a slot, waiting for one first.
    public func withSlot<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if free > 0 {
            free -= 1
        } else {
            await withCheckedContinuation { waiters.append($0) }
        }
        defer {
            if waiters.isEmpty { free += 1 } else { waiters.removeFirst().resume() }
        }
        return try await body()
    }
}

extension Trait where Self == EnsembleTrait {
    /// Runs the suite against a fresh 3-server ensemble.
    public static var zooKeeperEnsemble: Self { EnsembleTrait() }
}

public struct TimeoutError: Error {
    public init() {}
}

/// Runs `body`, failing with `TimeoutError` if it takes longer than `timeout` (a bound, not a wait).
public func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TimeoutError()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

extension AsyncStream<ZooKeeperConnectionState> {
    /// Reads states up to and including `state` (throws `TimeoutError` after `timeout`). Later
    /// calls continue where the previous one stopped.
    public func states(until state: ZooKeeperConnectionState, timeout: Duration = .seconds(30)) async throws -> [ZooKeeperConnectionState] {
        try await withTimeout(timeout) {
            var seen: [ZooKeeperConnectionState] = []
            for await value in self {
                seen.append(value)
                if value == state { break }
            }
            return seen
        }
    }
}
