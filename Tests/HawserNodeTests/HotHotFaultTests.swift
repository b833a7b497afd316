import Foundation
import HawserClient
import HawserTestSupport
import Testing

/// Issue 19's fault run for hot-hot flows on real processes: three workers (then a fourth) of one
/// node on a real PostgreSQL (commits durable), each partition elected through a PostgreSQL lease
/// (or a ZooKeeper ensemble: `HAWSER_FAULT_ELECTION=zookeeper`), with a standalone notary, and an RPC worker that queues its starts for them (the first client
/// starts there), every process on a NATS bus (`ha.bus`). Clients spread over the workers run flows
/// with client request ids while the test, in an order drawn from a seed (`HAWSER_FAULT_SEED`
/// replays one), kills a worker with SIGKILL ten times (starting it again each time), pauses one
/// past its lease and resumes it, adds a worker and removes one (SIGTERM), and kills the bus's
/// nats-server (every process hears it gone) and starts it again (every process is back on it).
/// `NodeHAHistory` then judges what the clients, the workers' logs and the database saw: every
/// acknowledged flow completed exactly once, tokens conserved, and every flow write made under an
/// epoch of its partition that its writer won, no epoch of a partition won twice, each
/// partition's fence only growing.
@Suite(.serialized, .enabled(if: PostgresServer.isAvailable, "needs PostgreSQL 15 and root (to run it as postgres)"))
struct HotHotFaultTests {
    enum Fault: Equatable { case kill(Int), pause, add, remove, restartBus }
    static let partitions = 8

    static func say(_ text: String) { FileHandle.standardError.write(Data("HotHotFaultTests: \(text)\n".utf8)) }

    @Test(.timeLimit(.minutes(10))) func everyFlowEndsOnceThroughKillsAPauseAndWorkersComingAndGoing() async throws {
        let seed = ProcessInfo.processInfo.environment["HAWSER_FAULT_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...999_999)
        var generator = SeededGenerator(seed: seed)
        let faults = ((0..<10).map { Fault.kill($0) } + [.pause, .add, .remove, .restartBus]).shuffled(using: &generator)
        Self.say("seed \(seed), faults \(faults)")

        let postgres = try await PostgresServer.start(durableCommits: true)
        defer { postgres.stop() }
        let notary = try await StandaloneNotary.start()
        defer { notary.kill() }
        let nats = try await NATSCluster.start(size: 1, jetStream: false)
        defer { nats.stop() }
        // HAWSER_FAULT_ELECTION=zookeeper: the partitions elected through a ZooKeeper ensemble, each
        // worker's on one session (a paused worker's session expires, and every partition with it).
        let ensemble = ProcessInfo.processInfo.environment["HAWSER_FAULT_ELECTION"] == "zookeeper" ? try await ZooKeeperEnsemble.start() : nil
        defer { ensemble?.stop() }
        let dir = try TemporaryDirectory()
        let set = try await NodeHAPair(root: dir.path, postgres: postgres, notary: notary.url, workers: ["W1", "W2", "W3"],
                                       partitions: Self.partitions, bus: nats.urls, ensemble: ensemble)
        try await set.start("W1")
        _ = try await set.awaitState("W1 ready") { $0["W1"] == "ready" }
        try await set.installAudit()
        try await set.start("W2")
        try await set.start("W3")
        var running = ["W1", "W2", "W3"]
        try await awaitEveryRunningWorkerServes(set, running)
        // An RPC worker, which queues its starts for the flow workers (docs/node.md "Roles").
        try await set.add("R", roles: [.rpc])
        try await set.start("R")

        let retries = RetryPolicy(maxAttempts: 10_000, baseBackoff: .milliseconds(20), maxBackoff: .milliseconds(300),
                                  attemptTimeout: .seconds(15), deadline: .seconds(240))
        // Each loop starts at a worker of its own and fails over to the others; the first at the
        // RPC worker, the others at flow workers.
        let urls = ["W1", "W2", "W3"].map(set.url)
        let clients = (0..<3).map { i in
            NodeClient(urls: (i == 0 ? [set.url("R")] : []) + Array(urls[i...] + urls[..<i]), username: "ops", password: "secret", retryPolicy: retries)
        }
        let load = NodeHALoad(clients[0], clients[1], clients[2])
        do {
            try await load.exercise(steps: faults.count) { step in
                Self.say("\(faults[step]), workers \(running), \(load.acknowledged.count) starts acknowledged so far")
                try await inject(faults[step], set, nats, &running, &generator)
            }
        } catch {
            for client in clients { try await client.shutdown() }
            throw error
        }
        for client in clients { try await client.shutdown() }
        #expect(load.errors.isEmpty, "clients gave up: \(load.errors)")

        // Flows whose start no client heard of must end too.
        try await eventually("every flow ended", timeout: .seconds(120)) { try await set.unfinished() == 0 }
        #expect(await set.stop(), "every worker stops cleanly")
        let history = try await set.history(starts: load.acknowledged)
        let terms = history.won.values.map(\.count).reduce(0, +)
        #expect(history.starts.count >= 60 && terms >= Self.partitions + 10, "\(history.starts.count) starts, \(terms) terms won")
        let violations = history.violations()
        #expect(violations.isEmpty, "seed \(seed): \(violations.joined(separator: "\n"))")
    }

    /// One fault, and the wait until every running worker serves again and every partition is led by one.
    func inject(_ fault: Fault, _ set: NodeHAPair, _ nats: NATSCluster, _ running: inout [String],
                _ generator: inout SeededGenerator) async throws {
        switch fault {
        case .kill:
            let victim = running.randomElement(using: &generator)!
            set.kill(victim)
            try await awaitPartitionsLed(by: running.filter { $0 != victim }, set)
            try await set.start(victim)
        case .pause:
            let victim = running.randomElement(using: &generator)!
            set.pause(victim)
            // Past its leases: the others take its partitions over (a claim waits while the paused
            // worker holds a fence row in an open transaction, at most the pool's stall limit).
            try await awaitPartitionsLed(by: running.filter { $0 != victim }, set)
            set.resume(victim)
        case .add:
            let id = "W\(set.ids.filter { $0.hasPrefix("W") }.count + 1)"
            try await set.add(id)
            try await set.start(id)
            running.append(id)
        case .remove:
            let leaving = running.randomElement(using: &generator)!
            #expect(await set.stop(leaving), "\(leaving) stops cleanly")
            running.removeAll { $0 == leaving }
            try await awaitPartitionsLed(by: running, set)
        case .restartBus:
            // The processes find each other's writes by their polls meanwhile; back on the bus,
            // they hear its news again.
            let processes = running + set.rpcWorkers.sorted()
            try await awaitBus(processes, set, connected: true)
            nats.servers[0].kill9()
            try await awaitBus(processes, set, connected: false)
            try nats.restart(nats.servers[0])
            try await awaitBus(processes, set, connected: true)
        }
        try await awaitEveryRunningWorkerServes(set, running)
    }

    /// Every process of `ids` says it is (or is not) connected to the bus (`hawser_bus_connected`).
    func awaitBus(_ ids: [String], _ set: NodeHAPair, connected: Bool) async throws {
        try await eventually("\(ids) \(connected ? "on" : "off") the bus", timeout: .seconds(60)) {
            for id in ids where try await PaymentNetworkHotHotTests.metric("hawser_bus_connected", at: set.ports[id]!) != (connected ? 1 : 0) {
                return false
            }
            return true
        }
    }

    /// Every worker of `running` answers ready (it owns a partition and has resumed its flows).
    func awaitEveryRunningWorkerServes(_ set: NodeHAPair, _ running: [String]) async throws {
        try await set.awaitState("\(running) ready") { seen in running.allSatisfy { seen[$0] == "ready" } }
    }

    /// Every partition's election led by one of `workers` (`hawser admin status --partitions`).
    func awaitPartitionsLed(by workers: [String], _ set: NodeHAPair, partitions: Int = Self.partitions) async throws {
        struct Status: Decodable { var leads: [String: [Int]] }
        try await eventually("every partition led by one of \(workers)", timeout: .seconds(120)) {
            let (code, output) = try await HawserProcess.run(["admin", "status", "--partitions", "\(partitions)"] + set.electionOptions)
            guard code == 0, let status = try? JSONDecoder().decode(Status.self, from: Data(output.utf8)) else { return false }
            let led = status.leads.filter { workers.contains($0.key) }.values.flatMap { $0 }
            return Set(led) == Set(0..<partitions)
        }
    }

    /// A worker's partition elections share one PostgreSQL connection: with one each (and one
    /// each for their administrations), a worker of 16 partitions held 40 connections, and three
    /// went past a default server's `max_connections` of 100.
    @Test(.timeLimit(.minutes(3))) func aWorkersPartitionsShareOneConnectionForTheirElections() async throws {
        let postgres = try await PostgresServer.start()
        defer { postgres.stop() }
        let notary = try await StandaloneNotary.start()
        defer { notary.kill() }
        let dir = try TemporaryDirectory()
        let set = try await NodeHAPair(root: dir.path, postgres: postgres, notary: notary.url, workers: ["W1"], partitions: 16)
        try await set.start("W1")
        try await awaitPartitionsLed(by: ["W1"], set, partitions: 16)
        let rows = try await postgres.rows("SELECT count(*) FROM pg_stat_activity WHERE datname = 'ledger' AND backend_type = 'client backend'")
        let connections = try #require(rows.first.flatMap { $0.first }.flatMap { Int($0) })
        // The pool's `database.maxConnections` (8 by default), and one for the 16 elections.
        #expect(connections <= 8 + 1, "W1 holds \(connections) connections")
        #expect(await set.stop(), "the worker stops cleanly")
    }
}
