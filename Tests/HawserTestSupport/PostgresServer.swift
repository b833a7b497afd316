import Foundation
import HawserCore
import Synchronization
import Testing

/// A throwaway PostgreSQL 15 server for tests: initdb in a temporary directory owned by the
/// `postgres` user (the server refuses to run as root), started on a free loopback port, killed
/// and removed by `stop()`. A watchdog kills it if the test process dies. Role `hawser` is the
/// superuser; without a password every login is trusted, with one a TCP login must give it.
/// `restartImmediately()` crashes it (`pg_ctl stop -m immediate`) and starts it again on its port.
public final class PostgresServer: Sendable {
    public static let bin = "/usr/lib/postgresql/15/bin"
    public static var isAvailable: Bool {
        // setpriv drops root to the postgres user, so this needs root (as the test machines run).
        FileManager.default.isExecutableFile(atPath: "\(bin)/postgres") && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
            && getuid() == 0
    }

    public let directory: String
    public let port: Int
    /// The running postmaster and the watchdog that kills it if the test process dies.
    private let running: Mutex<(process: Process, watchdog: ProcessWatchdog)?>
    private let databases = Atomic<Int>(0)
    private let durableCommits: Bool
    private let lateWAL: Bool

    /// The URL of the `postgres` database, without a password.
    public var url: String { url(database: "postgres") }

    public func url(database: String) -> String { "postgres://hawser@127.0.0.1:\(port)/\(database)" }

    /// Starts a server; with `password`, TCP logins of `hawser` must give it (SCRAM). Commits are
    /// acknowledged before their WAL is written unless `durableCommits`, which a test that crashes
    /// the server needs (the OS keeps what was written: `fsync` stays off). With `lateWAL`, a commit
    /// that did not wait for the disk (`synchronous_commit = off`) stays in the server's memory for
    /// up to 10 s (`wal_writer_delay`, the background writer writes no pages), so that a crash
    /// right after it loses it for certain.
    public static func start(password: String? = nil, durableCommits: Bool = false, lateWAL: Bool = false) async throws -> PostgresServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hawser-pg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.ownerAccountName: "postgres", .groupOwnerAccountName: "postgres"], ofItemAtPath: directory)
        let data = directory + "/data"
        var initdb = ["\(bin)/initdb", "-D", data, "-U", "hawser", "--no-sync", "-E", "UTF8"]
        if let password {
            let file = directory + "/password"
            try Data(password.utf8).write(to: URL(fileURLWithPath: file))
            try FileManager.default.setAttributes([.ownerAccountName: "postgres"], ofItemAtPath: file)
            initdb += ["--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=\(file)"]
        } else {
            initdb += ["-A", "trust"]
        }
        try await run(asPostgres: initdb)
        let server = PostgresServer(directory: directory, port: try FreePorts.take(1)[0], durableCommits: durableCommits, lateWAL: lateWAL)
        do {
            try await server.launch()
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    /// Starts the postmaster on the server's port and waits until it accepts connections.
    private func launch() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups", "\(Self.bin)/postgres", "-D", directory + "/data",
                             "-p", "\(port)", "-k", directory, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                             "-c", "synchronous_commit=\(durableCommits ? "on" : "off")", "-c", "full_page_writes=off",
                             "-c", "max_connections=200"]
            + (lateWAL ? ["-c", "wal_writer_delay=10000", "-c", "bgwriter_lru_maxpages=0"] : [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try ChildProcesses.start { try process.run() }
        let watchdog = try ProcessWatchdog(killing: [process.processIdentifier])
        running.withLock { $0 = (process, watchdog) }
        try await waitUntilReady(process)
    }

    /// A crash of the server (`pg_ctl stop -m immediate`: every backend quits, nothing is flushed
    /// or checkpointed), then a start on the same port, returning once it accepts connections
    /// again (after its crash recovery).
    public func restartImmediately() async throws {
        try await crash()
        try await startAgain()
    }

    /// A crash of the server (`pg_ctl stop -m immediate`) that it does not come back from until
    /// `startAgain()`: every connection is closed and every new one refused meanwhile.
    public func crash() async throws {
        if let (process, watchdog) = running.withLock({ $0.take() }) {
            try await Self.run(asPostgres: ["\(Self.bin)/pg_ctl", "-D", directory + "/data", "-m", "immediate", "-w", "stop"])
            process.waitUntilExit()
            watchdog.stop()
        }
    }

    /// Starts the server again after `crash()` (its crash recovery first), on the same port.
    public func startAgain() async throws {
        try await launch()
    }

    private init(directory: String, port: Int, durableCommits: Bool, lateWAL: Bool) {
        self.directory = directory
        self.port = port
        self.durableCommits = durableCommits
        self.lateWAL = lateWAL
        running = Mutex(nil)
    }

    /// Creates a new, empty database and returns its URL: one per test keeps tests apart.
    public func createDatabase() async throws -> String {
        let name = "t\(databases.add(1, ordering: .relaxed).newValue)_\(UUID().uuidString.prefix(8).lowercased())"
        try await sql("CREATE DATABASE \(name)")
        return url(database: name)
    }

    /// Runs `statement` as `hawser` through the server's Unix socket (trusted).
    public func sql(_ statement: String, database: String = "postgres") async throws {
        try await Self.run(asPostgres: ["\(Self.bin)/psql", "-h", directory, "-p", "\(port)", "-U", "hawser", "-d", database,
                                  "-v", "ON_ERROR_STOP=1", "-q", "-c", statement])
    }

    /// Runs `query` as `hawser` and returns its rows, each a list of its columns as text (NULL as "").
    public func rows(_ query: String, database: String = "postgres") async throws -> [[String]] {
        let output = try await Self.run(asPostgres: ["\(Self.bin)/psql", "-h", directory, "-p", "\(port)", "-U", "hawser", "-d", database,
                                               "-v", "ON_ERROR_STOP=1", "-q", "-A", "-t", "-F", "\u{1F}", "-c", query])
        return output.split(separator: "\n").map { $0.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init) }
    }

    private func waitUntilReady(_ process: Process) async throws {
        // A bound only: several servers starting together on a busy 2-core machine took over 30 s.
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "\(Self.bin)/pg_isready")
            probe.arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-U", "hawser", "-d", "postgres", "-q"]
            let ready = try await Self.onThread {
                try ChildProcesses.start { try probe.run() }
                probe.waitUntilExit()
                return probe.terminationStatus == 0
            }
            if ready { return }
            if !process.isRunning { throw PostgresServerError("postgres exited during start-up") }
            if ContinuousClock.now > deadline { throw PostgresServerError("postgres not ready within 120 s") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Kills the server (every backend exits with the postmaster) and removes the directory.
    public func stop() {
        if let (process, watchdog) = running.withLock({ $0.take() }) {
            watchdog.stop()
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                _ = process.waitUntilGone()
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a program as `postgres`; returns its standard output.
    @discardableResult
    private static func run(asPostgres arguments: [String]) async throws -> String {
        try await onThread { try runBlocking(asPostgres: arguments) }
    }

    /// Runs `body`, which blocks (waits for a program), on a thread of its own: the tests' tasks
    /// share as many threads as the machine has cores, and an initdb holding one for seconds stalls
    /// every other test's deadlines.
    private static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    private static func runBlocking(asPostgres arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups"] + arguments
        process.standardError = FileHandle.nullDevice
        process.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
        let output = try ChildProcesses.startWithOutputPipe(process)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PostgresServerError("\(arguments[0]) failed with status \(process.terminationStatus)")
        }
        return text
    }
}

/// Starts one PostgreSQL server for a suite and stops it when the suite ends, whatever happened.
/// With `ifAvailable`, a machine that cannot run one runs the suite without (`current` is nil).
public struct PostgresTrait: SuiteTrait, TestScoping {
    @TaskLocal public static var current: PostgresServer?
    public var isRecursive: Bool { false }
    private let ifAvailable: Bool

    public init(ifAvailable: Bool = false) { self.ifAvailable = ifAvailable }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        if ifAvailable && !PostgresServer.isAvailable { return try await function() }
        let server = try await PostgresServer.start()
        defer { server.stop() }
        try await Self.$current.withValue(server) { try await function() }
    }
}

public struct PostgresServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
