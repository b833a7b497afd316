import ArgumentParser
import Coordination
import Foundation
import HawserNode

/// `hawser bench failover`: kill -9 the leader and time until the new leader acts.
///
/// Without `--node`, each trial starts two candidate processes of this binary (`election run`) on
/// a fresh election, waits until A leads and B follows, waits a random 0-1 s, kills A with
/// SIGKILL, and measures from the kill to B's first accepted fenced write (B writes every 20 ms
/// while leading): the moment the new leader acts. With `--node`, the candidates are a pair of
/// nodes under flow load (`NodeFailoverBench`) and the new leader acts when a flow completes on
/// it. All times are CLOCK_MONOTONIC, shared by the processes. Use a release build.
struct FailoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover", abstract: "Measure failover time: kill -9 the leader (or the active node), time until the new one acts.",
        discussion: """
            Without --node: two `election run` candidates per trial; from the kill of the leader to the other's first accepted \
            fenced write. With --node: a standalone notary and two nodes on one node database (--mode hot-cold: two \
            `hawser watchdog`s, each with a node child; --mode hot-warm: two node processes), driven by --clients callers \
            through one failing-over NodeClient; from kill -9 of the active node (with --machine-gone: its watchdog and node \
            together) to the first flow completed by the new active node, as the caller receives it. With --node --mode \
            hot-hot: three workers of --partitions partitions (16 if absent), the callers spread over them; from kill -9 of a \
            worker until every partition it served serves at another (its flows resumed there), and from its restart until \
            it serves its share again (the rebalance). See docs/node.md, "Measuring failover".
            """)

    @OptionGroup var store: CoordinationOptions
    @Option(help: "Number of trials.") var trials = 20
    @Option(help: "Give up on a trial after this long (ms).") var trialTimeoutMs = 30_000
    @Option(help: "Directory for the trials' files (a temporary one, removed afterwards, if absent).") var workDirectory: String?
    @Flag(help: "Also print one JSON line with the summary.") var json = false
    @Flag(help: "Measure a pair of nodes under flow load instead of bare candidates.") var node = false
    @Option(help: "With --node: hot-cold (watchdogs), hot-warm or hot-hot.") var mode: HAConfiguration.Mode?
    @Flag(help: "With --node --mode hot-cold: kill the active node's watchdog with it, as when its machine is gone.")
    var machineGone = false
    @Option(help: "With --node: concurrent callers running flows.") var clients = 8
    @Option(help: "Three workers of this many partitions (bare election workers, or with --node --mode hot-hot node workers): time the takeover of a killed worker's partitions and the rebalance when it returns.")
    var partitions: Int?
    @Option(help: "With --node: the node database on PostgreSQL, postgres://user@host:port/database (password from $\(NodeDatabaseConfiguration.passwordVariable)); default: SQLite in the work directory.")
    var databaseURL: String?

    func validate() throws {
        guard trials >= 1 else { throw ValidationError("--trials must be at least 1") }
        guard trialTimeoutMs >= 1 else { throw ValidationError("--trial-timeout-ms must be at least 1") }
        if let partitions {
            guard !node || mode == .hotHot else { throw ValidationError("--partitions goes with bare workers, or with --node --mode hot-hot") }
            guard (PartitionFailoverBench.workers.count...ElectionCommand.Run.maxPartitions).contains(partitions) else {
                throw ValidationError("--partitions must be \(PartitionFailoverBench.workers.count) to \(ElectionCommand.Run.maxPartitions)")
            }
        }
        guard node else {
            guard mode == nil, !machineGone, databaseURL == nil else {
                throw ValidationError("--mode, --machine-gone and --database-url go with --node")
            }
            return
        }
        guard let mode, mode != .single else { throw ValidationError("--node needs --mode hot-cold, hot-warm or hot-hot") }
        if machineGone, mode != .hotCold {
            throw ValidationError("--machine-gone goes with --mode hot-cold: a hot-warm node stands for itself, so its kill -9 is already its machine gone")
        }
        guard clients >= 1 else { throw ValidationError("--clients must be at least 1") }
    }

    func run() async throws {
        let directory = workDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("hawser-failover-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { if workDirectory == nil { try? FileManager.default.removeItem(atPath: directory) } }
        var results: [Duration] = []
        if node, let mode {
            let bench = NodeFailoverBench(mode: mode, machineGone: machineGone, clients: clients, trialTimeout: .milliseconds(trialTimeoutMs),
                                          election: store.settings, electionOptions: forwardedOptions(), databaseURL: databaseURL,
                                          directory: directory, partitions: mode == .hotHot ? partitions ?? HAConfiguration.defaultPartitions : nil)
            let (failovers, rebalances) = try await bench.run(trials: trials)
            let timeout = store.zookeeper != nil ? "session timeout \(store.sessionTimeoutMs) ms" : "lease \(store.leaseMs) ms"
            let label = "node \(mode.rawValue)\(machineGone ? " machine-gone" : ""), \(backendName), \(timeout)"
            let fields = #""mode":"\#(mode.rawValue)","machineGone":\#(machineGone),"clients":\#(clients),"#
            guard let partitions = bench.partitions else {
                summarise(failovers, label: label, fields: fields)
                return
            }
            let workers = "3 workers, \(partitions) partitions, hold-down \(store.holdDownMs) ms"
            summarise(failovers, label: "takeover, \(label), \(workers)", fields: fields + #""partitions":\#(partitions),"measure":"takeover","#)
            summarise(rebalances, label: "rebalance, \(label), \(workers)", fields: fields + #""partitions":\#(partitions),"measure":"rebalance","#)
            return
        }
        if let partitions {
            let bench = PartitionFailoverBench(partitions: partitions, arguments: { forwardedOptions(election: $0) },
                                               timeout: .milliseconds(trialTimeoutMs), directory: directory)
            var rebalances: [Duration] = []
            for trial in 1...trials {
                let (takeover, rebalance) = try await bench.trial(trial)
                results.append(takeover)
                rebalances.append(rebalance)
                print("trial \(trial): takeover \(Self.ms(takeover)) ms, rebalance \(Self.ms(rebalance)) ms")
            }
            let label = "\(backendName), 3 workers, \(partitions) partitions, hold-down \(store.holdDownMs) ms"
            summarise(results, label: "takeover, \(label)", fields: #""partitions":\#(partitions),"measure":"takeover","#)
            summarise(rebalances, label: "rebalance, \(label)", fields: #""partitions":\#(partitions),"measure":"rebalance","#)
            return
        }
        for trial in 1...trials {
            let failover = try await runTrial(trial, directory: directory)
            results.append(failover)
            print("trial \(trial): \(Self.ms(failover)) ms")
        }
        summarise(results, label: backendName, fields: "")
    }

    private var backendName: String { store.zookeeper != nil ? "zookeeper" : store.postgres != nil ? "postgres" : "sqlite" }

    /// Prints the summary line (median, p90, worst, best) and, with --json, the JSON line.
    private func summarise(_ results: [Duration], label: String, fields: String) {
        let sorted = results.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        // The nearest-rank 90th percentile.
        let p90 = sorted[Int((Double(sorted.count) * 0.9).rounded(.up)) - 1]
        let worst = sorted.last!, best = sorted.first!
        print("\(label): \(results.count) trials, median \(Self.ms(median)) ms, p90 \(Self.ms(p90)) ms, worst \(Self.ms(worst)) ms, best \(Self.ms(best)) ms")
        if json {
            print(#"{"benchmark":"\#(node ? "node-failover" : partitions != nil ? "partition-failover" : "failover")","backend":"\#(backendName)",\#(fields)"trials":\#(results.count),"medianMs":\#(Self.ms(median)),"p90Ms":\#(Self.ms(p90)),"worstMs":\#(Self.ms(worst)),"bestMs":\#(Self.ms(best))}"#)
        }
    }

    private func runTrial(_ trial: Int, directory: String) async throws -> Duration {
        let election = "bench-\(UUID().uuidString.prefix(8).lowercased())-\(trial)"
        let writes = "\(directory)/writes-\(trial).sqlite"
        let common = ["election", "run"] + forwardedOptions(election: election) + ["--fenced-writes", writes, "--write-interval-ms", "20"]
        let timeout = Duration.milliseconds(trialTimeoutMs)
        let a = try BenchChild("candidate A", arguments: common + ["--id", "A"])
        defer { a.kill() }
        try await a.waitFor("A leading", timeout: timeout) { $0.contains { $0.event == "leader" } }
        let b = try BenchChild("candidate B", arguments: common + ["--id", "B"])
        defer { b.kill() }
        try await b.waitFor("B following A", timeout: timeout) { $0.contains { $0.event == "follower" && $0.leader == "A" } }
        // A crash comes at any moment of the renewal cycle, not just after B's first round.
        try await Task.sleep(for: .milliseconds(Int.random(in: 0..<1000)))
        let killedAt = a.kill()
        try await b.waitFor("B acting", timeout: timeout) { $0.contains { $0.event == "write" && $0.accepted == true } }
        let acted = b.events.first { $0.event == "write" && $0.accepted == true }!.t
        try? FileManager.default.removeItem(atPath: writes)
        return .nanoseconds(acted - killedAt.nanoseconds)
    }

    /// The store and timing options, passed on to the candidates (or watchdogs); the election
    /// named `election`, or as given.
    private func forwardedOptions(election: String? = nil) -> [String] {
        var options: [String] = []
        if let zookeeper = store.zookeeper { options += ["--zookeeper", zookeeper] }
        if let credentials = store.zookeeperCredentials { options += ["--zookeeper-credentials", credentials] }
        if let postgres = store.postgres { options += ["--postgres", postgres] }
        if let sqlite = store.sqlite { options += ["--sqlite", sqlite] }
        options += ["--election", election ?? store.election,
                    "--session-timeout-ms", "\(store.sessionTimeoutMs)", "--check-interval-ms", "\(store.checkIntervalMs)",
                    "--lease-ms", "\(store.leaseMs)", "--renew-ms", "\(store.renewMs)", "--stand-aside-ms", "\(store.standAsideMs)",
                    "--hold-down-ms", "\(store.holdDownMs)", "--request-timeout-ms", "\(store.requestTimeoutMs)"]
        return options
    }

    static func ms(_ duration: Duration) -> Int { Int(duration.millisecondsValue) }
}

extension HAConfiguration.Mode: ExpressibleByArgument {}
