import ArgumentParser
import Coordination
import Foundation
import Synchronization

/// `hawser bench failover`: kill -9 the leader and time until the new leader acts.
///
/// Each trial starts two candidate processes of this binary (`election run`) on a fresh election,
/// waits until A leads and B follows, waits a random 0-1 s, kills A with SIGKILL, and measures from the kill to B's first
/// accepted fenced write (B writes every 20 ms while leading): the moment the new leader acts.
/// All times are CLOCK_MONOTONIC, shared by the processes. Use a release build.
struct FailoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover", abstract: "Measure failover time: kill -9 the leader, time until the new leader acts.")

    @OptionGroup var store: CoordinationOptions
    @Option(help: "Number of trials.") var trials = 20
    @Option(help: "Give up on a trial after this long (ms).") var trialTimeoutMs = 30_000
    @Option(help: "Directory for the fenced-write files (a temporary one if absent).") var workDirectory: String?
    @Flag(help: "Also print one JSON line with the summary.") var json = false

    func validate() throws {
        guard trials >= 1 else { throw ValidationError("--trials must be at least 1") }
    }

    func run() async throws {
        let directory = workDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("hawser-failover-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { if workDirectory == nil { try? FileManager.default.removeItem(atPath: directory) } }
        let backend = store.zookeeper != nil ? "zookeeper" : store.postgres != nil ? "postgres" : "sqlite"
        var results: [Duration] = []
        for trial in 1...trials {
            let failover = try await runTrial(trial, directory: directory)
            results.append(failover)
            print("trial \(trial): \(Self.ms(failover)) ms")
        }
        let sorted = results.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        let worst = sorted.last!, best = sorted.first!
        print("\(backend): \(trials) trials, median \(Self.ms(median)) ms, worst \(Self.ms(worst)) ms, best \(Self.ms(best)) ms")
        if json {
            print(#"{"benchmark":"failover","backend":"\#(backend)","trials":\#(trials),"medianMs":\#(Self.ms(median)),"worstMs":\#(Self.ms(worst)),"bestMs":\#(Self.ms(best))}"#)
        }
    }

    private func runTrial(_ trial: Int, directory: String) async throws -> Duration {
        let election = "bench-\(UUID().uuidString.prefix(8).lowercased())-\(trial)"
        let writes = "\(directory)/writes-\(trial).sqlite"
        var common = forwardedOptions() + ["--election", election, "--fenced-writes", writes, "--write-interval-ms", "20"]
        if let sqlite = store.sqlite { common += ["--sqlite", sqlite] }
        let timeout = Duration.milliseconds(trialTimeoutMs)
        let a = try BenchCandidate(arguments: ["--id", "A"] + common)
        defer { a.stop() }
        try await a.waitFor("A leading", timeout: timeout) { $0.contains { $0.event == "leader" } }
        let b = try BenchCandidate(arguments: ["--id", "B"] + common)
        defer { b.stop() }
        try await b.waitFor("B following A", timeout: timeout) { $0.contains { $0.event == "follower" && $0.leader == "A" } }
        // A crash comes at any moment of the renewal cycle, not just after B's first round.
        try await Task.sleep(for: .milliseconds(Int.random(in: 0..<1000)))
        let killedAt = a.kill()
        try await b.waitFor("B acting", timeout: timeout) { $0.contains { $0.event == "write" && $0.accepted == true } }
        let acted = b.events.first { $0.event == "write" && $0.accepted == true }!.t
        try? FileManager.default.removeItem(atPath: writes)
        return .nanoseconds(acted - killedAt.nanoseconds)
    }

    /// The store and timing options, passed on to the candidates.
    private func forwardedOptions() -> [String] {
        var options: [String] = []
        if let zookeeper = store.zookeeper { options += ["--zookeeper", zookeeper] }
        if let credentials = store.zookeeperCredentials { options += ["--zookeeper-credentials", credentials] }
        if let postgres = store.postgres { options += ["--postgres", postgres] }
        options += ["--session-timeout-ms", "\(store.sessionTimeoutMs)", "--check-interval-ms", "\(store.checkIntervalMs)",
                    "--lease-ms", "\(store.leaseMs)", "--renew-ms", "\(store.renewMs)", "--stand-aside-ms", "\(store.standAsideMs)",
                    "--hold-down-ms", "\(store.holdDownMs)", "--request-timeout-ms", "\(store.requestTimeoutMs)"]
        return options
    }

    static func ms(_ duration: Duration) -> Int { Int(duration.millisecondsValue) }
}

/// One `hawser election run` child of the benchmark and the events it printed.
private final class BenchCandidate: Sendable {
    struct Event: Sendable {
        var event: String
        var leader: String?
        var accepted: Bool?
        var t: Int64
    }

    private let process = Process()
    private let state = Mutex<(text: String, events: [Event])>(("", []))

    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        if !FileManager.default.isExecutableFile(atPath: process.executableURL!.path) {
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        }
        process.arguments = ["election", "run"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil }
            self?.receive(data)
        }
        try process.run()
    }

    private func receive(_ data: Data) {
        state.withLock { state in
            state.text += String(decoding: data, as: UTF8.self)
            while let newline = state.text.firstIndex(of: "\n") {
                let line = Data(state.text[..<newline].utf8)
                state.text = String(state.text[state.text.index(after: newline)...])
                guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
                      let event = object["event"] as? String, let t = (object["t"] as? NSNumber)?.int64Value else { continue }
                state.events.append(Event(event: event, leader: object["leader"] as? String, accepted: object["accepted"] as? Bool, t: t))
            }
        }
    }

    var events: [Event] { state.withLock { $0.events } }

    func waitFor(_ what: String, timeout: Duration, _ condition: ([Event]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(events) {
            if ContinuousClock.now > deadline { throw CLIError("no \(what) within \(timeout)") }
            if !process.isRunning { throw CLIError("candidate exited (status \(process.terminationStatus)) before \(what)") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// SIGKILL; returns the moment it was sent.
    func kill() -> Moment {
        let moment = Moment.now()
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return moment
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
