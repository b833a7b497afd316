import Foundation
import HawserCore
import HawserTestSupport
import Synchronization

/// A `hawser notary run` or `hawser node run` child process. It is killed when the value is
/// dropped, so a failing test never leaves it running; a watchdog shell reading a pipe from this
/// process kills it if the test process itself dies.
final class HawserProcess: Sendable {
    private let process: Process
    private let watchdog = Mutex<ProcessWatchdog?>(nil)
    private let output = Output()

    /// The child's stdout, and whoever waits for its "listening" line.
    private final class Output: Sendable {
        let state = Mutex<(waiter: CheckedContinuation<Int, any Error>?, text: String)>((nil, ""))
    }

    /// The binary built beside the test bundle (override with HAWSER_BIN).
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["HAWSER_BIN"] { return path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hawser").path
    }

    /// Starts `hawser notary run` with `config` and returns once it listens.
    /// `environment` is added to this process's.
    /// `mergingErrors`: its log (standard error) is read with its output, into `printed`.
    static func notary(config: String, environment: [String: String] = [:], mergingErrors: Bool = false) async throws -> (HawserProcess, port: Int) {
        try await start(["notary", "run", "--config", config, "--log-level", logLevel ?? "warning"], environment: environment,
                        mergingErrors: mergingErrors)
    }

    /// What it printed so far (and logged, if started `mergingErrors`).
    var printed: String { output.state.withLock { $0.text } }

    /// `HAWSER_TEST_LOG_LEVEL` (e.g. `info`): the children's log level, to see why a test failed.
    /// Their logs go to the test's standard error.
    static var logLevel: String? { ProcessInfo.processInfo.environment["HAWSER_TEST_LOG_LEVEL"] }

    /// Starts `hawser node run` with `config` and returns once its RPC API listens.
    /// `environment` is added to this process's.
    static func node(config: String, environment: [String: String] = [:]) async throws -> (HawserProcess, port: Int) {
        try await start(["node", "run", "--config", config, "--log-level", logLevel ?? "error"], environment: environment)
    }

    /// Starts `hawser worker run` with `arguments` and returns once one of its roles listens (the
    /// port of the first `listening` line, the node's or the notary's).
    static func worker(_ arguments: [String]) async throws -> (HawserProcess, port: Int) {
        try await start(["worker", "run"] + arguments + ["--log-level", logLevel ?? "error"])
    }

    private static func start(_ arguments: [String], environment: [String: String] = [:],
                              mergingErrors: Bool = false) async throws -> (HawserProcess, port: Int) {
        let child = HawserProcess(arguments: arguments, environment: environment, mergingErrors: mergingErrors)
        return (child, try await child.waitForPort())
    }

    private let mergingErrors: Bool

    private init(arguments: [String], environment: [String: String] = [:], mergingErrors: Bool = false) {
        self.mergingErrors = mergingErrors
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    }

    /// Starts `hawser node run` with `config`, its log at `logLevel` appended to the file `log`
    /// (where a hot-warm node names the epochs it wins), and returns once its RPC API listens.
    static func node(config: String, logLevel: String, log: String) async throws -> (HawserProcess, port: Int) {
        let child = HawserProcess(arguments: ["node", "run", "--config", config, "--log-level", logLevel])
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        child.process.standardError = handle
        return (child, try await child.waitForPort())
    }

    private func waitForPort() async throws -> Int {
        let command = "hawser " + (process.arguments ?? []).prefix(2).joined(separator: " ")
        // A thread of its own reads the output with blocking reads until the end. Foundation's
        // `readabilityHandler` (a dispatch read source) raced libdispatch's event loop when the
        // pipe closed on a kill: the test process crashed in `_dispatch_event_loop_drain` about
        // once in 40 runs of the crash test.
        let readOutput: @Sendable (FileHandle) -> Void = { [output] reader in
            while true {
                let data = reader.availableData
                let waiter = output.state.withLock { state -> (CheckedContinuation<Int, any Error>, Result<Int, any Error>)? in
                    state.text += String(decoding: data, as: UTF8.self)
                    guard let waiter = state.waiter else { return nil }
                    if let port = Self.port(in: state.text) {
                        state.waiter = nil
                        return (waiter, .success(port))
                    }
                    if data.isEmpty {  // end of output: the process exited before listening
                        state.waiter = nil
                        return (waiter, .failure(ProcessError(message: "`\(command)` exited before listening: \(state.text)")))
                    }
                    return nil
                }
                if let (continuation, result) = waiter { continuation.resume(with: result) }
                if data.isEmpty { return }
            }
        }
        return try await withCheckedThrowingContinuation { continuation in
            output.state.withLock { $0.waiter = continuation }
            do {
                let reader = try ChildProcesses.startWithOutputPipe(process, mergingErrors: mergingErrors).fileHandleForReading
                Thread { readOutput(reader) }.start()
                let guardian = try ProcessWatchdog(killing: [process.processIdentifier])
                watchdog.withLock { $0 = guardian }
            } catch {
                output.state.withLock { $0.waiter = nil }
                continuation.resume(throwing: error)
            }
        }
    }

    /// Runs `hawser arguments` with its standard output and error read together, until it exits,
    /// or (`killWhenListening`) until it prints a "listening" line: then it is killed, since it was
    /// expected to refuse to start. `environment` is added to this process's; `directory` is its
    /// working directory. Returns its exit status (SIGKILL's if killed) and its output.
    static func runToExit(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
                          killWhenListening: Bool = true) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = try ChildProcesses.startWithOutputPipe(process, mergingErrors: true)
        let guardian = try ProcessWatchdog(killing: [process.processIdentifier])
        defer { guardian.stop() }
        let reader = pipe.fileHandleForReading
        let pid = process.processIdentifier
        let output = await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            Thread {
                var text = ""
                while true {
                    let data = reader.availableData
                    text += String(decoding: data, as: UTF8.self)
                    if data.isEmpty { break }
                    if killWhenListening, port(in: text) != nil { Foundation.kill(pid, SIGKILL) }
                }
                continuation.resume(returning: text)
            }.start()
        }
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// The child's process id.
    var pid: Int32 { process.processIdentifier }

    private static func port(in output: String) -> Int? {
        guard let line = output.split(separator: "\n").first(where: { $0.contains("\"listening\"") }),
              let range = line.range(of: "\"port\":") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    /// Runs a `hawser` command to its end; returns its exit status and what it printed (both streams).
    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let pipe = try ChildProcesses.startWithOutputPipe(process, mergingErrors: true)
        // A blocking read to the end on a thread of its own (see `waitForPort`).
        let output = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: pipe.fileHandleForReading.readDataToEndOfFile()) }.start()
        }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// Whether the process is still alive (it may have crashed).
    var isRunning: Bool { process.isRunning }

    /// SIGKILL: no shutdown code runs, as in a power cut of the process.
    func kill() {
        stopWatchdog()
        Foundation.kill(process.processIdentifier, SIGKILL)
        _ = process.waitUntilGone()
    }

    /// SIGSTOP: the process freezes (as in a long GC pause or a stalled VM); `resume()` continues it.
    func pause() { Foundation.kill(process.processIdentifier, SIGSTOP) }

    /// SIGCONT after `pause()`.
    func resume() { Foundation.kill(process.processIdentifier, SIGCONT) }

    /// SIGTERM and wait: a graceful shutdown. Returns the exit status. A process that has not
    /// exited within `bound` is killed (SIGKILL: status 9), so a shutdown that hangs fails the
    /// test that expects 0 instead of holding the whole suite. The wait runs on a thread of its
    /// own: a shutdown takes seconds, and blocking a cooperative thread for them (two on this
    /// machine) starved the tests' in-process elections and engines of the suite's other tests.
    func terminate(within bound: Duration = .seconds(60)) async -> Int32 {
        stopWatchdog()
        process.terminate()
        let process = process
        return await withCheckedContinuation { continuation in
            Thread {
                if !process.waitUntilGone(within: bound) {
                    Foundation.kill(process.processIdentifier, SIGKILL)
                    _ = process.waitUntilGone()
                }
                continuation.resume(returning: process.exitStatus ?? SIGKILL)
            }.start()
        }
    }

    private func stopWatchdog() { watchdog.withLock { $0 }?.stop() }

    deinit {
        if process.isRunning { kill() }
    }
}

struct ProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
