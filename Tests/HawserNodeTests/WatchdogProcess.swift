import Foundation
import HawserCore
import HawserTestSupport
import Synchronization

/// A `hawser watchdog` child process and the JSON lines it (and its own child) printed. Killed
/// when dropped; a `ProcessWatchdog` kills it if the test process dies.
final class WatchdogProcess: Sendable {
    struct Event: Sendable {
        var event: String
        var fields: [String: String]
        /// CLOCK_MONOTONIC nanoseconds, comparable across processes.
        var t: Int64

        var epoch: UInt64? { fields["epoch"].flatMap { UInt64($0) } }
        var pid: Int32? { fields["pid"].flatMap { Int32($0) } }
        var generation: Int? { fields["generation"].flatMap { Int($0) } }
    }

    let id: String
    let stderrPath: String
    private let process: Process
    private let guardian: Mutex<ProcessWatchdog?>
    private final class Lines: Sendable {
        let state = Mutex<(text: String, events: [Event])>(("", []))
    }
    private final class Exit: Sendable {
        let state = Mutex<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>((nil, []))
    }
    private let lines = Lines()
    private let exit = Exit()

    /// Starts `hawser watchdog --id ID ARGUMENTS`; its standard error goes to `directory/ID.stderr`.
    init(id: String, directory: String, arguments: [String]) throws {
        self.id = id
        stderrPath = directory + "/\(id).stderr"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: HawserProcess.binary)
        process.arguments = ["watchdog", "--id", id] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.terminationHandler = { [exit] process in
            let status = process.terminationStatus
            let waiters = exit.state.withLock { exit in
                exit.status = status
                defer { exit.waiters = [] }
                return exit.waiters
            }
            for waiter in waiters { waiter.resume(returning: status) }
        }
        let pipe = try ChildProcesses.startWithOutputPipe(process)
        guardian = Mutex(try ProcessWatchdog(killing: [process.processIdentifier]))
        // Blocking reads on a thread of its own, to the end of the output (see `HawserProcess`).
        let reader = pipe.fileHandleForReading
        Thread { [lines] in
            while true {
                let data = reader.availableData
                lines.state.withLock { lines in
                    lines.text += String(decoding: data, as: UTF8.self)
                    while let newline = lines.text.firstIndex(of: "\n") {
                        if let event = Self.parse(lines.text[..<newline]) { lines.events.append(event) }
                        lines.text = String(lines.text[lines.text.index(after: newline)...])
                    }
                }
                if data.isEmpty { return }
            }
        }.start()
    }

    private static func parse(_ line: Substring) -> Event? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let event = object["event"] as? String else { return nil }
        var fields: [String: String] = [:]
        for (key, value) in object { fields[key] = "\(value)" }
        return Event(event: event, fields: fields, t: (object["t"] as? NSNumber)?.int64Value ?? 0)
    }

    var events: [Event] { lines.state.withLock { $0.events } }
    var pid: Int32 { process.processIdentifier }

    /// The last role event: leader, follower or not-standing.
    var role: Event? { events.last { ["leader", "follower", "not-standing"].contains($0.event) } }

    /// The first event named `name` after the first `count` events that satisfies `condition`, once it is printed.
    @discardableResult
    func await(_ name: String, after count: Int = 0, timeout: Duration = .seconds(60),
               where condition: (Event) -> Bool = { _ in true }) async throws -> Event {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let found = events.dropFirst(count).first(where: { $0.event == name && condition($0) }) { return found }
            if ContinuousClock.now > deadline {
                let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
                throw ProcessError(message: "watchdog \(id): no \(name) within \(timeout); events: \(events.map(\.event)); stderr: \(stderr.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// SIGKILL, as a crash of the machine's watchdog.
    func kill() {
        guardian.withLock { $0 }?.stop()
        Foundation.kill(process.processIdentifier, SIGKILL)
    }

    /// SIGTERM: the watchdog stops its child and withdraws.
    func terminate() {
        Foundation.kill(process.processIdentifier, SIGTERM)
    }

    /// The watchdog's exit status, once it has exited (awaited through its termination handler).
    func exitStatus() async -> Int32 {
        let status = await withCheckedContinuation { continuation in
            let known = exit.state.withLock { exit -> Int32? in
                if exit.status == nil { exit.waiters.append(continuation) }
                return exit.status
            }
            if let known { continuation.resume(returning: known) }
        }
        guardian.withLock { $0 }?.stop()
        return status
    }

    deinit {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        guardian.withLock { $0 }?.stop()
        // A child outlives a killed watchdog: end the ones not seen to exit.
        let seen = events
        let exited = Set(seen.filter { $0.event == "child-exited" }.compactMap(\.generation))
        for event in seen where event.event == "child-started" && !exited.contains(event.generation ?? -1) {
            if let pid = event.pid { Foundation.kill(pid, SIGKILL) }
        }
    }
}

/// The environment of a running process, from /proc.
func environment(ofProcess pid: Int32) -> [String: String] {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [:] }
    var environment: [String: String] = [:]
    for entry in data.split(separator: 0) {
        let text = String(decoding: entry, as: UTF8.self)
        if let equals = text.firstIndex(of: "=") { environment[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
    }
    return environment
}
