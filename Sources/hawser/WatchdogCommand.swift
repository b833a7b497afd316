import ArgumentParser
import Coordination
import Foundation
import HawserClient
import HawserNode
import Logging
import ServiceLifecycle

/// `hawser watchdog`: the hot-cold watchdog of design document 004. It stands for election on
/// its child's behalf and runs the child only while it leads; the decisions are `WatchdogCore`'s,
/// this command and `WatchdogShell` only carry them out.
struct WatchdogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watchdog",
        abstract: "Stand for election for a child process (hot-cold): run it only while leading, watch it, restart it.",
        usage: "hawser watchdog --id ID --health URL [--advertise URL ...] (--zookeeper ... | --postgres ... | --sqlite ...) [options] -- COMMAND [ARGS ...]",
        discussion: """
            While this watchdog leads, it runs COMMAND with HAWSER_FENCE_EPOCH set to the epoch it won, and polls the \
            health URL (any 2xx answer is healthy). The child must answer healthy within --start-timeout-ms of its start; \
            after that, --health-failures failed polls in a row make it unhealthy. When the child exits on its own or turns \
            unhealthy, the watchdog resigns at once (another watchdog's child takes over), stops the child, and does not \
            stand again before its back-off has passed: --backoff-initial-ms, doubling with each failure in a row up to \
            --backoff-max-ms, forgotten once a child stays healthy for --backoff-reset-ms. A child is stopped with SIGTERM, \
            then SIGKILL after --stop-grace-ms: when leadership is lost, when the child fails, and on SIGTERM or SIGINT to \
            the watchdog, which then withdraws from the election and exits. \
            Prints one JSON line per event on standard output (the child's output goes to the same standard output and \
            error): started, leader (epoch), follower (leader), not-standing, child-started (generation, pid, epoch), \
            child-healthy, child-failed (reason, backoffMs), child-stopping (reason), child-killing, child-exited (status), \
            resigning (reason), backoff-reset, stopped, failed (code, error). Each carries "t", CLOCK_MONOTONIC in \
            nanoseconds. See docs/node.md, "Hot-cold with the watchdog".
            """)

    @Option(help: "This watchdog's candidate id (one per machine).") var id: String
    @Option(name: .customLong("advertise"), help: "An RPC URL clients reach the child at when this watchdog leads (repeatable).")
    var advertise: [String] = []
    @Option(help: "The child's health URL, e.g. http://127.0.0.1:8090/health/ready; any 2xx answer is healthy.")
    var health: String
    @OptionGroup var store: CoordinationOptions
    @Option(help: "How often the child's health is polled (ms).") var healthIntervalMs = 500
    @Option(help: "Bound on one health request (ms).") var healthTimeoutMs = 1000
    @Option(help: "Failed health polls in a row that make a child that was healthy unhealthy.") var healthFailures = 3
    @Option(help: "How long a started child may take to answer healthy (ms).") var startTimeoutMs = 60000
    @Option(help: "From SIGTERM to SIGKILL when the child is stopped (ms); at most four fifths of the time the election keeps a leadership given up.") var stopGraceMs = 10000
    @Option(help: "Back-off after the first failure in a row (ms); it doubles with each further one.") var backoffInitialMs = 1000
    @Option(help: "The longest back-off (ms).") var backoffMaxMs = 30000
    @Option(help: "A child healthy this long (ms) resets the back-off.") var backoffResetMs = 60000
    @Option(help: "Log level for stderr.") var logLevel: Logger.Level = .warning
    @Argument(parsing: .postTerminator, help: ArgumentHelp("The child's command and arguments, after --.", valueName: "command"))
    var command: [String] = []

    var settings: WatchdogCore.Settings {
        var settings = WatchdogCore.Settings()
        settings.healthInterval = .milliseconds(healthIntervalMs)
        settings.healthFailures = healthFailures
        settings.startTimeout = .milliseconds(startTimeoutMs)
        settings.stopGrace = .milliseconds(stopGraceMs)
        settings.backoffInitial = .milliseconds(backoffInitialMs)
        settings.backoffMax = .milliseconds(backoffMaxMs)
        settings.backoffReset = .milliseconds(backoffResetMs)
        return settings
    }

    func validate() throws {
        try Candidate.validateOption(id)
        guard !command.isEmpty else { throw ValidationError("give the child's command after --, e.g. -- hawser node run --config node.json") }
        _ = try Self.executable(command[0])
        for url in advertise + [health] {
            do { _ = try NotaryClient.baseURL(url) } catch { throw ValidationError("\(url) is not an http(s) URL such as http://127.0.0.1:8090") }
        }
        guard healthTimeoutMs >= 1 else { throw ValidationError("--health-timeout-ms must be at least 1") }
        let timings = [("--health-interval-ms", healthIntervalMs), ("--health-timeout-ms", healthTimeoutMs), ("--start-timeout-ms", startTimeoutMs),
                       ("--stop-grace-ms", stopGraceMs), ("--backoff-initial-ms", backoffInitialMs), ("--backoff-max-ms", backoffMaxMs),
                       ("--backoff-reset-ms", backoffResetMs)]
        for (option, value) in timings where value > ElectionSettings.maxMs {
            throw ValidationError("\(option) must be at most \(ElectionSettings.maxMs) ms (a day), not \(value)")
        }
        let problems = settings.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "; ")) }
    }

    /// The full path of `name`: as given if it holds a slash, else the first match on PATH.
    static func executable(_ name: String) throws -> String {
        let candidates = name.contains("/") ? [name]
            : (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/\(name)" }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ValidationError(name.contains("/") ? "the child command \(name) is not an executable file"
                                                     : "the child command \(name) is not on PATH")
        }
        return URL(fileURLWithPath: found).standardizedFileURL.path
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let logger = Logger(label: "hawser.watchdog")
        let candidate = Candidate(id: id, addresses: advertise)
        var settings = settings
        settings.leadershipHold = try store.settings.timing().validity
        let shell = try WatchdogShell(
            settings: settings,
            child: WatchdogShell.ChildCommand(executable: try Self.executable(command[0]), arguments: Array(command.dropFirst())),
            health: health, healthTimeout: .milliseconds(healthTimeoutMs), emit: emitEvent) { checks in
                try store.makeElection(candidate: candidate, health: checks, logger: logger)
            }
        try await runUntilSignalled(shell, id: id, logger: logger)
    }
}

