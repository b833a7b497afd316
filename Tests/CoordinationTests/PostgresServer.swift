import Foundation
import HawserTestSupport
import Synchronization

/// A throwaway PostgreSQL 15 server for tests: initdb in a temporary directory owned by the
/// `postgres` user (the server refuses to run as root), started on a free loopback port with
/// trust authentication, killed and removed by `stop()`. A watchdog kills it if the test process dies.
final class PostgresServer: Sendable {
    static let bin = "/usr/lib/postgresql/15/bin"
    static var isAvailable: Bool {
        // setpriv drops root to the postgres user, so this needs root (as the test machines run).
        FileManager.default.isExecutableFile(atPath: "\(bin)/postgres") && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
            && getuid() == 0
    }

    let directory: String
    let port: Int
    private let process: Process
    private let watchdog: ProcessWatchdog

    var url: String { "postgres://hawser@127.0.0.1:\(port)/postgres" }

    static func start() async throws -> PostgresServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hawser-pg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.ownerAccountName: "postgres", .groupOwnerAccountName: "postgres"], ofItemAtPath: directory)
        let data = directory + "/data"
        try run(asPostgres: ["\(bin)/initdb", "-D", data, "-U", "hawser", "-A", "trust", "--no-sync", "-E", "UTF8"])
        let port = try FreePort.one()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups", "\(bin)/postgres", "-D", data,
                             "-p", "\(port)", "-k", directory, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        let log = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let server = PostgresServer(directory: directory, port: port, process: process,
                                    watchdog: try ProcessWatchdog(killing: [process.processIdentifier]))
        do {
            try await server.waitUntilReady()
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    private init(directory: String, port: Int, process: Process, watchdog: ProcessWatchdog) {
        self.directory = directory
        self.port = port
        self.process = process
        self.watchdog = watchdog
    }

    private func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "\(Self.bin)/pg_isready")
            probe.arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-U", "hawser", "-d", "postgres", "-q"]
            try probe.run()
            probe.waitUntilExit()
            if probe.terminationStatus == 0 { return }
            if !process.isRunning { throw CandidateError("postgres exited during start-up") }
            if ContinuousClock.now > deadline { throw CandidateError("postgres not ready within 30 s") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Kills the server (every backend exits with the postmaster) and removes the directory.
    func stop() {
        watchdog.stop()
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func run(asPostgres arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CandidateError("\(arguments[0]) failed with status \(process.terminationStatus)") }
    }
}

/// A free loopback port (the kernel's choice for port 0).
enum FreePort {
    static func one() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CandidateError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw CandidateError("bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
