import Foundation
import HawserCore
import HawserTestSupport
import Synchronization

/// A `hawser election run` child process and the JSON lines it printed. Killed when dropped; a
/// watchdog kills it if the test process dies.
final class CandidateProcess: Sendable {
    struct Event: Sendable, Hashable {
        var event: String
        var epoch: UInt64?
        var leader: String?
        var accepted: Bool?
        var error: String?
        /// The partition it is about (`--partitions`).
        var partition: Int?
        /// CLOCK_MONOTONIC nanoseconds, comparable across processes.
        var t: Int64
    }

    let id: String
    private let process: Process
    private let watchdog: Mutex<ProcessWatchdog?>
    private let output = Output()

    private final class Output: Sendable {
        let state = Mutex<(text: String, events: [Event])>(("", []))
        /// What it logged on standard error (warnings and worse, by default).
        let log = Mutex("")
    }

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["HAWSER_BIN"] { return path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hawser").path
    }

    /// Starts `hawser election run --id ID ARGUMENTS`, with `environment` added to the test's.
    init(id: String, arguments: [String], environment: [String: String] = [:]) throws {
        self.id = id
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["election", "run", "--id", id] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let (pipe, errorPipe) = try ChildProcesses.start { [process] in
            let pipe = Pipe(), errorPipe = Pipe()
            process.standardOutput = pipe
            process.standardError = errorPipe
            try process.run()
            return (pipe, errorPipe)
        }
        errorPipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil }
            output.log.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        pipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil }
            output.state.withLock { output in
                output.text += String(decoding: data, as: UTF8.self)
                while let newline = output.text.firstIndex(of: "\n") {
                    let line = output.text[..<newline]
                    output.text = String(output.text[output.text.index(after: newline)...])
                    if let event = Self.parse(line) { output.events.append(event) }
                }
            }
        }
        watchdog = Mutex(try ProcessWatchdog(killing: [process.processIdentifier]))
    }

    private static func parse(_ line: Substring) -> Event? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let event = object["event"] as? String, let t = object["t"] as? Int64 ?? (object["t"] as? NSNumber)?.int64Value else { return nil }
        return Event(event: event, epoch: (object["epoch"] as? NSNumber)?.uint64Value, leader: object["leader"] as? String,
                     accepted: object["accepted"] as? Bool, error: object["error"] as? String,
                     partition: (object["partition"] as? NSNumber)?.intValue, t: t)
    }

    var events: [Event] { output.state.withLock { $0.events } }
    var log: String { output.log.withLock { $0 } }
    var pid: Int32 { process.processIdentifier }

    /// Stopped by a signal, every thread of it (state `T` in /proc/PID/task/*/stat), as after
    /// SIGSTOP. `kill` returns before the threads have stopped: one still running may yet take
    /// a lock.
    var isStopped: Bool {
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task"), !threads.isEmpty else { return false }
        return threads.allSatisfy { thread in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("T")
        }
    }

    /// The events that announce a role.
    static let roleEvents: Set<String> = ["leader", "follower", "not-standing", "stopped"]

    /// The role the last role event announced: ("leader", epoch) or ("follower", nil)...
    var lastRole: Event? { events.last { Self.roleEvents.contains($0.event) } }
    var leadingEpoch: UInt64? { lastRole.flatMap { $0.event == "leader" ? $0.epoch : nil } }

    /// Polls `condition` on the events until it holds; throws after `timeout`.
    func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ condition: ([Event]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(events) {
            if ContinuousClock.now > deadline {
                // The events with their leaders, and the end of the log (rounds that failed say why).
                let seen = events.map { $0.event + ($0.leader.map { "(\($0))" } ?? "") }
                throw CandidateError("\(id): no \(what) within \(timeout); events: \(seen); log ends: \(log.suffix(2_000))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The partitions whose last role event says this candidate leads them (`--partitions`).
    var leadingPartitions: Set<Int> {
        var last: [Int: String] = [:]
        for event in events where Self.roleEvents.contains(event.event) {
            if let partition = event.partition { last[partition] = event.event }
        }
        return Set(last.filter { $0.value == "leader" }.keys)
    }

    func waitUntilLeading(timeout: Duration = .seconds(20)) async throws -> UInt64 {
        try await waitUntil("leadership", timeout: timeout) { _ in leadingEpoch != nil }
        return leadingEpoch!
    }

    func waitUntilFollowing(_ leader: String? = nil, timeout: Duration = .seconds(20)) async throws {
        try await waitUntil("follower", timeout: timeout) { _ in
            lastRole?.event == "follower" && (leader == nil || lastRole?.leader == leader)
        }
    }

    /// SIGKILL, as a crash.
    func kill() {
        stopWatchdog()
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func pause() { Foundation.kill(process.processIdentifier, SIGSTOP) }
    func resume() { Foundation.kill(process.processIdentifier, SIGCONT) }

    /// SIGTERM and wait (a graceful stop).
    func terminate() {
        stopWatchdog()
        Foundation.kill(process.processIdentifier, SIGCONT)
        process.terminate()
        process.waitUntilExit()
    }

    private func stopWatchdog() { watchdog.withLock { $0 }?.stop() }

    deinit {
        if process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        watchdog.withLock { $0 }?.stop()
    }
}

struct CandidateError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
