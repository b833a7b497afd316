import Coordination
import Foundation
import HawserCore
import Synchronization

/// A child process of a benchmark: this binary run with some arguments (`election run`,
/// `watchdog`, `node run`, `notary run`), and the JSON event lines it printed on standard output
/// (a watchdog's child prints on the same output). Every child is registered with
/// `BenchChildren`, so that Ctrl-C or SIGTERM of the benchmark ends them too.
final class BenchChild: Sendable {
    struct Event: Sendable {
        var event: String
        var leader: String?
        var accepted: Bool?
        var pid: Int32?
        var port: Int?
        var generation: Int?
        /// `election run --partitions`: the partition an event is about.
        var partition: Int?
        /// CLOCK_MONOTONIC nanoseconds: the line's "t", or when it was read if it has none.
        var t: Int64
    }

    let name: String
    /// Where its standard error goes, if anywhere.
    private let log: String?
    private let process = Process()
    private let state = Mutex<(text: String, events: [Event])>(("", []))

    /// Starts this binary with `arguments`; its standard error goes to `log` (discarded if nil).
    init(_ name: String, arguments: [String], log: String? = nil) throws {
        self.name = name
        self.log = log
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = arguments
        if let log {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        } else {
            process.standardError = FileHandle.nullDevice
        }
        let pipe = try BenchChildren.shared.start(process)
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil }
            self?.receive(data)
        }
    }

    /// This binary's path.
    static var executable: String {
        let named = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        if FileManager.default.isExecutableFile(atPath: named) { return named }
        return URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    }

    private func receive(_ data: Data) {
        state.withLock { state in
            state.text += String(decoding: data, as: UTF8.self)
            while let newline = state.text.firstIndex(of: "\n") {
                let line = Data(state.text[..<newline].utf8)
                state.text = String(state.text[state.text.index(after: newline)...])
                guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
                      let event = object["event"] as? String else { continue }
                state.events.append(Event(event: event, leader: object["leader"] as? String, accepted: object["accepted"] as? Bool,
                                          pid: (object["pid"] as? NSNumber)?.int32Value, port: (object["port"] as? NSNumber)?.intValue,
                                          generation: (object["generation"] as? NSNumber)?.intValue,
                                          partition: (object["partition"] as? NSNumber)?.intValue,
                                          t: (object["t"] as? NSNumber)?.int64Value ?? Moment.now().nanoseconds))
                // A watchdog's child is ended on an interruption too, until it is seen to exit.
                let last = state.events[state.events.count - 1]
                if event == "child-started", let pid = last.pid { BenchChildren.shared.adopt(pid) }
                if event == "child-exited", let started = state.events.last(where: { $0.event == "child-started" && $0.generation == last.generation }),
                   let pid = started.pid {
                    BenchChildren.shared.release(pid)
                }
            }
        }
    }

    var events: [Event] { state.withLock { $0.events } }
    var isRunning: Bool { process.isRunning }

    /// Waits until `condition` holds for the events so far; fails when the child exits first or
    /// after `timeout`.
    func waitFor(_ what: String, timeout: Duration, _ condition: ([Event]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(events) {
            if ContinuousClock.now > deadline { throw CLIError("\(name): no \(what) within \(timeout)") }
            if !process.isRunning { throw CLIError("\(name) exited (status \(process.terminationStatus)) before \(what)\(lastWords)") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The last lines of its log (why it exited, as a rule), after a colon; empty without a log.
    private var lastWords: String {
        guard let log, let text = try? String(contentsOfFile: log, encoding: .utf8) else { return "" }
        let lines = text.split(separator: "\n").suffix(3)
        return lines.isEmpty ? "" : ": " + lines.joined(separator: " | ")
    }

    /// SIGKILL (unless it has exited already) and waits for the exit; returns the moment it was sent.
    @discardableResult
    func kill() -> Moment {
        let moment = Moment.now()
        guard process.isRunning else { return moment }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return moment
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    func stop(grace: Duration = .seconds(15)) async {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        if process.isRunning { kill() }
    }
}

/// Every process the benchmark started (and the children its watchdogs started), so that an
/// interrupted benchmark leaves none behind: on SIGINT or SIGTERM each is sent SIGKILL and the
/// benchmark exits with status 130.
final class BenchChildren: Sendable {
    static let shared = BenchChildren()
    private let processes = Mutex<[Process]>([])
    private let adopted = Mutex<Set<Int32>>([])
    private let handlers = Mutex<[any DispatchSourceSignal]>([])

    /// Starts `process` with a pipe as its standard output, and returns the pipe.
    func start(_ process: Process) throws -> Pipe {
        installHandlers()
        let pipe = try ChildProcesses.startWithOutputPipe(process)
        processes.withLock { $0.append(process) }
        return pipe
    }

    /// Also ends `pid`, a watchdog's child, on an interruption, until `release`d.
    func adopt(_ pid: Int32) { adopted.withLock { _ = $0.insert(pid) } }
    func release(_ pid: Int32) { adopted.withLock { _ = $0.remove(pid) } }

    private func installHandlers() {
        handlers.withLock { handlers in
            guard handlers.isEmpty else { return }
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [self] in
                    processes.withLock { for process in $0 where process.isRunning { kill(process.processIdentifier, SIGKILL) } }
                    adopted.withLock { for pid in $0 { kill(pid, SIGKILL) } }
                    FileHandle.standardError.write(Data("interrupted: stopped every process the benchmark started\n".utf8))
                    exit(130)
                }
                source.resume()
                handlers.append(source)
            }
        }
    }
}
