import AsyncHTTPClient
import Coordination
import Foundation
import HawserClient
import HawserCore
import HawserNode
import Synchronization

/// `hawser bench failover --node`: kill -9 of the active node under flow load, to the first flow
/// completed by the new active node, as a caller receives it.
///
/// One run sets up a standalone notary (`notary run`, open to any party) and one node directory
/// whose database both nodes share, with a configuration per node (A and B, each on its own
/// port). Each trial starts A's side, waits until A serves, starts B's side, waits until B stands
/// by, drives flows through one `NodeClient` given both addresses, waits a random 0-1 s, kills A's
/// node (with `machineGone`, A's watchdog first), and waits for the first flow whose record ended
/// after A was dead: only B can have ended it. Then it stops everything the trial started. The
/// election is one for the whole run, so epochs only grow, as the shared database requires.
struct NodeFailoverBench {
    let mode: HAConfiguration.Mode
    let machineGone: Bool
    let clients: Int
    let trialTimeout: Duration
    /// The election's back end and timing, under this run's name.
    let election: ElectionSettings
    /// The same as `hawser watchdog` options.
    let electionOptions: [String]
    let databaseURL: String?
    let directory: String
    /// Hot-hot: how many partitions the workers split the flows into.
    let partitions: Int?

    init(mode: HAConfiguration.Mode, machineGone: Bool, clients: Int, trialTimeout: Duration, election: ElectionSettings,
         electionOptions: [String], databaseURL: String?, directory: String, partitions: Int? = nil) {
        self.mode = mode
        self.partitions = partitions
        self.machineGone = machineGone
        self.clients = clients
        self.trialTimeout = trialTimeout
        let name = "bench-node-\(UUID().uuidString.prefix(8).lowercased())"
        var settings = election.resolved(against: FileManager.default.currentDirectoryPath)
        settings.election = name
        self.election = settings
        var options = electionOptions
        if let at = options.firstIndex(of: "--election") { options[at + 1] = name }
        self.electionOptions = options
        self.databaseURL = databaseURL
        self.directory = directory
    }

    private var nodeDirectory: String { directory + "/node" }
    private var logs: String { directory + "/logs" }
    /// The processes of a trial: a pair, or three hot-hot workers.
    private var ids: [String] { mode == .hotHot ? HotHotTrial.workers : ["A", "B"] }

    /// Runs the trials, printing one line each; returns their failover times (hot-hot: the
    /// takeover of a killed worker's partitions) and, in hot-hot, the rebalances when it returned.
    func run(trials: Int) async throws -> (failovers: [Duration], rebalances: [Duration]) {
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let notary = try await startNotary()
        var results: [Duration] = [], rebalances: [Duration] = []
        do {
            // Outside the kernel's ephemeral range: a port the kernel hands out for port 0 is one
            // an outgoing connection may take before the node binds it.
            let ports = try FreePorts.take(ids.count)
            try writeNodeConfigurations(notary: notary.url, notaryKey: notary.key, ports: ports)
            let urls = ports.map { "http://127.0.0.1:\($0)" }
            for trial in 1...trials {
                if mode == .hotHot {
                    let (takeover, rebalance, before) = try await runHotHotTrial(trial, urls: urls)
                    results.append(takeover)
                    rebalances.append(rebalance)
                    print("trial \(trial): takeover \(FailoverBench.ms(takeover)) ms, rebalance \(FailoverBench.ms(rebalance)) ms "
                          + "(\(before) flows completed in the trial before the kill)")
                    continue
                }
                let (failover, before) = try await runTrial(trial, urls: urls)
                results.append(failover)
                print("trial \(trial): \(FailoverBench.ms(failover)) ms (\(before) flows completed in the trial before the kill)")
            }
        } catch {
            await notary.child.stop()
            throw error
        }
        await notary.child.stop()
        return (results, rebalances)
    }

    /// A notary that notarises for any party, on a free port.
    private func startNotary() async throws -> (child: BenchChild, url: String, key: String) {
        let root = directory + "/notary"
        _ = try NotaryCommand.initialise(directory: root, name: "O=Bench Notary", port: 0, parties: [], demoParty: false, acceptAnyParty: true)
        let key = try KeyFile.load(root + "/notary.key").key.publicKey.base64
        let child = try BenchChild("notary", arguments: ["notary", "run", "--config", root + "/hawser.json", "--log-level", "error"],
                                   log: logs + "/notary.log")
        try await child.waitFor("the notary listening", timeout: trialTimeout) { $0.contains { $0.event == "listening" } }
        let port = child.events.first { $0.event == "listening" }!.port!
        return (child, "http://127.0.0.1:\(port)", key)
    }

    /// node/<id>.json for each process: one node (its keys, users and data directory) on a port each.
    private func writeNodeConfigurations(notary: String, notaryKey: String, ports: [Int]) throws {
        _ = try Node.initialise(directory: nodeDirectory, port: 0, parties: ["O=Alice"], username: "bench", password: "bench",
                                notary: .remote(urls: [notary], publicKey: notaryKey, name: "O=Bench Notary"))
        var base = try NodeConfiguration.load(nodeDirectory + "/node.json")
        if let databaseURL {
            base.database.kind = .postgres
            base.database.url = databaseURL
        }
        for (id, port) in zip(ids, ports) {
            var configuration = base
            configuration.listen.port = port
            configuration.ha.mode = mode
            configuration.ha.partitions = partitions
            if mode.stands {
                configuration.ha.id = id
                configuration.ha.advertise = ["http://127.0.0.1:\(port)"]
                configuration.ha.election = election
            }
            let problems = configuration.problems
            guard problems.isEmpty else { throw CLIError(problems.joined(separator: "; ")) }
            try configuration.save(nodeDirectory + "/\(id).json")
        }
    }

    /// A client of the node that retries through a failover, trying `urls` in the order given.
    private func client(_ urls: [String]) -> NodeClient {
        NodeClient(urls: urls, username: "bench", password: "bench",
                   retryPolicy: RetryPolicy(maxAttempts: 1_000_000, baseBackoff: .milliseconds(20), maxBackoff: .milliseconds(200),
                                            attemptTimeout: .seconds(10), deadline: trialTimeout))
    }

    /// One trial; returns the failover time and how many flows completed before the kill.
    private func runTrial(_ trial: Int, urls: [String]) async throws -> (Duration, Int) {
        var started: [BenchChild] = []
        let client = client(urls)
        let load = FailoverLoad()
        var driving: Task<Void, Never>?
        func stopAll() async {
            driving?.cancel()
            await driving?.value
            for child in started { await child.stop() }
            try? await client.shutdown()
        }
        do {
            let a = try start("A", url: urls[0], trial: trial)
            started.append(a)
            try await awaitServing(a, url: urls[0])
            let b = try start("B", url: urls[1], trial: trial)
            started.append(b)
            try await awaitStandingBy(b, url: urls[1])
            driving = Task { await load.drive([client], callers: clients, prefix: "t\(trial)") }
            try await load.waitFor("\(clients * 2) completed flows", timeout: trialTimeout) { $0.count >= clients * 2 }
            // A crash comes at any moment, not just after the first flows.
            try await Task.sleep(for: .milliseconds(Int.random(in: 0..<1000)))
            let before = load.completions.count
            let (killedAt, deadAt) = try await killActive(a)
            try await load.waitFor("a flow completed by B", timeout: trialTimeout) { $0.contains { $0.ended > deadAt } }
            let acted = load.completions.first { $0.ended > deadAt }!.received
            await stopAll()
            return (acted - killedAt, before)
        } catch {
            await stopAll()
            throw CLIError("trial \(trial): \(error) (logs in \(logs))")
        }
    }

    /// One hot-hot trial: three workers, balanced; the callers spread over them; kill -9 of one at
    /// a random moment. Returns the takeover (from the kill until every partition the victim
    /// served serves at a survivor, its flows resumed there: its `serving` line), the rebalance
    /// (from the victim's restart until it serves its share again) and the flows completed before
    /// the kill.
    private func runHotHotTrial(_ trial: Int, urls: [String]) async throws -> (Duration, Duration, Int) {
        var workers: [String: BenchChild] = [:]
        let clients = urls.indices.map { client(Array(urls[$0...] + urls[..<$0])) }
        let load = FailoverLoad()
        var driving: Task<Void, Never>?
        func stopAll() async {
            driving?.cancel()
            await driving?.value
            for child in workers.values { await child.stop() }
            for client in clients { try? await client.shutdown() }
        }
        let hotHot = HotHotTrial(partitions: partitions ?? HAConfiguration.defaultPartitions, timeout: trialTimeout)
        do {
            for id in ids { workers[id] = try start(id, url: "", trial: trial) }
            try await hotHot.waitUntilBalanced(workers)
            driving = Task { await load.drive(clients, callers: self.clients, prefix: "t\(trial)") }
            try await load.waitFor("\(self.clients * 2) completed flows", timeout: trialTimeout) { $0.count >= self.clients * 2 }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0..<1000)))
            let before = load.completions.count
            let victim = ids.randomElement()!
            let lost = HotHotTrial.serving(workers[victim]!.events)
            let killedAt = workers[victim]!.kill().nanoseconds
            let takeover = try await hotHot.takeover(of: lost, by: workers.filter { $0.key != victim }, after: killedAt)
            let restartedAt = Moment.now().nanoseconds
            workers[victim] = try start(victim, url: "", trial: trial)
            try await hotHot.waitUntilBalanced(workers)
            let back = HotHotTrial.serving(workers[victim]!.events).compactMap { partition in
                workers[victim]!.events.last { $0.event == "serving" && $0.partition == partition }?.t
            }.max() ?? restartedAt
            await stopAll()
            return (.nanoseconds(takeover - killedAt), .nanoseconds(back - restartedAt), before)
        } catch {
            await stopAll()
            throw CLIError("trial \(trial): \(error) (logs in \(logs))")
        }
    }

    /// A's or B's side: a watchdog with a node child (hot-cold), or a node (hot-warm, hot-hot).
    private func start(_ id: String, url: String, trial: Int) throws -> BenchChild {
        let node = ["node", "run", "--config", nodeDirectory + "/\(id).json", "--log-level", "error"]
        let log = logs + "/\(id)-\(trial).log"
        guard mode == .hotCold else { return try BenchChild("node \(id)", arguments: node, log: log) }
        return try BenchChild("watchdog \(id)", arguments: ["watchdog", "--id", id, "--health", url + "/health/ready", "--advertise", url,
                                                             "--health-interval-ms", "200"] + electionOptions
                                  + ["--", BenchChild.executable] + node, log: log)
    }

    private func awaitServing(_ a: BenchChild, url: String) async throws {
        if mode == .hotCold {
            try await a.waitFor("A's node healthy", timeout: trialTimeout) { $0.contains { $0.event == "child-healthy" } }
        } else {
            try await awaitReadiness(a, url: url, status: "ready")
        }
    }

    private func awaitStandingBy(_ b: BenchChild, url: String) async throws {
        if mode == .hotCold {
            try await b.waitFor("B following A", timeout: trialTimeout) { $0.contains { $0.event == "follower" && $0.leader == "A" } }
        } else {
            try await awaitReadiness(b, url: url, status: "standby")
        }
    }

    /// Polls the node's `/health/ready` until its body's status is `status`.
    private func awaitReadiness(_ node: BenchChild, url: String, status: String) async throws {
        let deadline = ContinuousClock.now + trialTimeout
        var last = ""
        while ContinuousClock.now < deadline {
            if !node.isRunning { throw CLIError("\(node.name) exited before its status was \(status)") }
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url + "/health/ready"), timeout: .seconds(2)),
               let body = try? await response.body.collect(upTo: 1 << 16) {
                last = String(buffer: body)
                if last.contains("\"status\":\"\(status)\"") { return }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CLIError("\(node.name) did not report \(status) within \(trialTimeout); last answer: \(last)")
    }

    /// Kills A's node (and first its watchdog, with `machineGone`) with SIGKILL. Returns the moment
    /// of the first signal and the wall-clock time, in microseconds, by which A's node was dead.
    private func killActive(_ a: BenchChild) async throws -> (Moment, Int64) {
        guard mode == .hotCold else {
            let killedAt = a.kill()
            return (killedAt, Self.wallMicroseconds())
        }
        guard let node = a.events.last(where: { $0.event == "child-started" })?.pid else { throw CLIError("A's watchdog started no node") }
        let killedAt = Moment.now()
        if machineGone { a.kill() }
        kill(node, SIGKILL)
        // Dead once gone from /proc or a zombie (an orphan waits there for init).
        let deadline = ContinuousClock.now + trialTimeout
        while let stat = try? String(contentsOfFile: "/proc/\(node)/stat", encoding: .utf8), !stat.contains(") Z ") {
            if ContinuousClock.now > deadline { throw CLIError("A's node \(node) did not die of SIGKILL") }
            try await Task.sleep(for: .milliseconds(1))
        }
        return (killedAt, Self.wallMicroseconds())
    }

    static func wallMicroseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }
}

/// Callers that run IssueTokens flows back to back through `NodeClient`s, each with its own
/// client request id, and record every completed flow: when the caller received it and when the
/// node ended it (its `updatedAt`).
final class FailoverLoad: Sendable {
    struct Completion: Sendable {
        /// When the caller had the answer.
        var received: Moment
        /// The flow record's end, wall clock in microseconds.
        var ended: Int64
    }

    private let state = Mutex<[Completion]>([])

    var completions: [Completion] { state.withLock { $0 } }

    /// Runs until cancelled, caller `i` through `clients[i % clients.count]`. A call that gives up
    /// (its retry deadline spent) is simply followed by the next.
    func drive(_ clients: [NodeClient], callers: Int, prefix: String) async {
        await withTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                let client = clients[caller % clients.count]
                group.addTask {
                    var i = 0
                    while !Task.isCancelled {
                        i += 1
                        guard let flow = try? await client.run("IssueTokens", arguments: Array(#"{"owner":"O=Alice","amount":1}"#.utf8),
                                                              clientRequestId: "\(prefix)-\(caller)-\(i)") else { continue }
                        let received = Moment.now()
                        guard flow.status == "completed", let ended = flow.updatedAt.flatMap(Instant.init(rfc3339:)) else { continue }
                        self.state.withLock { $0.append(Completion(received: received, ended: ended.microsecondsSinceEpoch)) }
                    }
                }
            }
        }
    }

    func waitFor(_ what: String, timeout: Duration, _ condition: ([Completion]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(completions) {
            if ContinuousClock.now > deadline { throw CLIError("no \(what) within \(timeout)") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}
