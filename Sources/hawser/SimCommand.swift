import ArgumentParser
import Coordination
import Foundation
import Sim
import Synchronization

/// `hawser sim`: the seeded simulation of the lease election (and, with `--shard`, the hot-warm
/// shard), with `--model zookeeper` of the ZooKeeper election, with `--model cluster` of the
/// notary's replicas, or with `--model sessions` of nodes
/// paying each other through flow sessions, outside the test suite: long
/// campaigns over many seeds on every core, and one seed replayed event by event.
/// docs/simulation.md describes what it simulates and checks.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run the seeded simulation: a campaign over many seeds, or one seed replayed step by step.",
        discussion: """
            A campaign prints every seed that broke an invariant, the first one's last events, and \
            how many seeds a minute it ran; it exits with status 1 if any seed broke one. \
            `--replay SEED` with the same options prints every event of that seed as it happens.
            """)

    enum Model: String, ExpressibleByArgument, CaseIterable { case election, zookeeper, cluster, sessions }

    @Option(help: "What to simulate: election (the lease election, with --shard the hot-warm shard), zookeeper (the ZooKeeper election), cluster (the notary's replicas) or sessions (nodes paying each other through flow sessions).")
    var model = Model.election
    @Option(help: "Seeds to run: N, FIRST-LAST or A,B,C.")
    var seeds = "1-100"
    @Option(help: "Replay this one seed, printing every event (true time in ns, then the event).")
    var replay: UInt64?
    @Flag(help: "Simulate the hot-warm shard too: every candidate owns the node database's flows when it leads.")
    var shard = false
    @Option(help: "Faults to inject, comma-separated, or all or none; election and zookeeper: \(SimFault.allCases.map(\.rawValue).joined(separator: ", ")); cluster: \(ClusterFault.allCases.map(\.rawValue).joined(separator: ", ")); sessions: \(SessionFault.allCases.map(\.rawValue).joined(separator: ", ")).")
    var faults = "all"
    @Option(help: "With --model cluster or sessions: break a rule on purpose, to see the checks catch it; cluster: \(ClusterMutation.allCases.map(\.rawValue).joined(separator: ", ")); sessions: \(SessionMutation.allCases.map(\.rawValue).joined(separator: ", ")).")
    var mutation: String?
    @Option(help: "Chance that a message is lost, 0...0.5.")
    var loss = 0.02
    @Option(help: "Chance that a message takes longer than the request time-out, 0...0.5.")
    var slow = 0.03
    @Option(help: "With --model cluster or sessions: chance that a message is delivered twice, 0...0.5.")
    var duplicate = 0.02
    @Option(help: "Each clock runs at 1 ± this of true time, 0...0.9 (the election's margin covers 0.1).")
    var drift = 0.02
    @Option(help: "Simulated seconds with faults, then --quiet-seconds without, 1...3600 (default: 60 for the elections, 20 for the cluster and sessions).")
    var faultySeconds: Int?
    @Option(help: "Simulated seconds without faults at the end, after which a candidate must lead (the cluster must answer, every payment must have ended), 1...3600 (default: 20 for the elections, 10 for the cluster, 15 for sessions).")
    var quietSeconds: Int?
    @Option(help: "Threads running seeds (default: one per core).")
    var jobs = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        _ = try seedList()
        guard (0...0.5).contains(loss), (0...0.5).contains(slow), (0...0.5).contains(duplicate) else {
            throw ValidationError("--loss, --slow and --duplicate must be 0...0.5")
        }
        guard (0...0.9).contains(drift) else { throw ValidationError("--drift must be 0...0.9") }
        guard [faultySeconds, quietSeconds].allSatisfy({ $0.map { (1...3600).contains($0) } ?? true }) else {
            throw ValidationError("--faulty-seconds and --quiet-seconds must be 1...3600")
        }
        switch model {
        case .election, .zookeeper:
            _ = try faultKinds()
            guard mutation == nil else { throw ValidationError("--mutation needs --model cluster or sessions") }
            guard !shard || model == .election else { throw ValidationError("--shard needs --model election") }
        case .cluster:
            _ = try clusterSettings()
            guard !shard else { throw ValidationError("--shard needs --model election") }
        case .sessions:
            _ = try sessionSettings()
            guard !shard else { throw ValidationError("--shard needs --model election") }
        }
        guard (1...256).contains(jobs) else { throw ValidationError("--jobs must be 1...256") }
    }

    func run() throws {
        let one: @Sendable (UInt64, ((String) -> Void)?) -> SeedRun
        switch model {
        case .election:
            let settings = try settings()
            one = { seed, observe in
                let outcome = LeaseElectionSim.run(seed: seed, settings: settings, observe: observe)
                return SeedRun(seed: seed, violation: outcome.violation, summary: Self.summary(outcome))
            }
        case .zookeeper:
            let settings = try zooKeeperSettings()
            one = { seed, observe in
                let outcome = ZooKeeperElectionSim.run(seed: seed, settings: settings, observe: observe)
                return SeedRun(seed: seed, violation: outcome.violation, summary: Self.summary(outcome))
            }
        case .cluster:
            let settings = try clusterSettings()
            one = { seed, observe in
                let outcome = NotaryClusterSim.run(seed: seed, settings: settings, observe: observe)
                return SeedRun(seed: seed, violation: outcome.violation, summary: Self.summary(outcome))
            }
        case .sessions:
            let settings = try sessionSettings()
            one = { seed, observe in
                let outcome = SessionNetworkSim.run(seed: seed, settings: settings, observe: observe)
                return SeedRun(seed: seed, violation: outcome.violation, summary: Self.summary(outcome))
            }
        }
        if let replay {
            let outcome = one(replay) { print($0) }
            print(outcome.summary)
            if outcome.violation != nil { throw ExitCode(1) }
            return
        }
        let started = ContinuousClock.now
        let outcomes = Self.campaign(try seedList(), jobs: jobs) { one($0, nil) }
        let seconds = Double((ContinuousClock.now - started).nanosecondsValue) / 1e9
        let broken = outcomes.filter { $0.violation != nil }
        for outcome in broken { print("seed \(outcome.seed): \(outcome.violation!.what)") }
        if let first = broken.first?.violation { print("\nthe first:\n\(first)\n") }
        print(String(format: "seeds %@: %d run, %d broke an invariant, %.1f s, %.0f seeds a minute (%d thread%@)",
                     seeds, outcomes.count, broken.count, seconds,
                     Double(outcomes.count) * 60 / max(seconds, 0.001), jobs, jobs == 1 ? "" : "s"))
        if let first = broken.first {
            print("replay it: hawser sim --replay \(first.seed) \(replayOptions())")
            throw ExitCode(1)
        }
    }

    /// One seed's run: its violation, if any, and its summary line.
    struct SeedRun: Sendable {
        var seed: UInt64
        var violation: SimViolation?
        var summary: String
    }

    /// Runs every seed on `jobs` threads; the outcomes in seed order.
    static func campaign(_ seeds: [UInt64], jobs: Int, run: @escaping @Sendable (UInt64) -> SeedRun) -> [SeedRun] {
        let next = Atomic<Int>(0)
        let outcomes = Mutex<[SeedRun]>([])
        let done = DispatchGroup()
        for _ in 0..<jobs {
            done.enter()
            Thread {
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < seeds.count else { break }
                    let outcome = run(seeds[index])
                    outcomes.withLock { $0.append(outcome) }
                }
                done.leave()
            }.start()
        }
        done.wait()
        return outcomes.withLock { $0 }.sorted { $0.seed < $1.seed }
    }

    static func summary(_ outcome: LeaseElectionSim.Outcome) -> String {
        let what = outcome.violation.map { "BROKE AN INVARIANT at \(Double($0.atNs) / 1e9) s: \($0.what)" } ?? "no invariant broken"
        var line = "seed \(outcome.seed): \(what); \(outcome.events) events, \(outcome.faults) faults, \(outcome.terms) terms"
        if outcome.flowsDone + outcome.flowsParked > 0 { line += ", \(outcome.flowsDone) flows finished, \(outcome.flowsParked) parked" }
        return line + String(format: ", digest %016llx", outcome.digest)
    }

    static func summary(_ outcome: ZooKeeperElectionSim.Outcome) -> String {
        let what = outcome.violation.map { "BROKE AN INVARIANT at \(Double($0.atNs) / 1e9) s: \($0.what)" } ?? "no invariant broken"
        return "seed \(outcome.seed): \(what); \(outcome.events) events, \(outcome.faults) faults, \(outcome.terms) terms, "
            + "\(outcome.expiredSessions) sessions expired" + String(format: ", digest %016llx", outcome.digest)
    }

    static func summary(_ outcome: NotaryClusterSim.Outcome) -> String {
        let what = outcome.violation.map { "BROKE AN INVARIANT at \(Double($0.atNs) / 1e9) s: \($0.what)" } ?? "no invariant broken"
        return "seed \(outcome.seed): \(what); \(outcome.events) events, \(outcome.faults) faults, \(outcome.entries) log entries, "
            + "\(outcome.signed) transactions signed, \(outcome.stopped) replicas stopped (log_diverged)"
            + String(format: ", digest %016llx", outcome.digest)
    }

    static func summary(_ outcome: SessionNetworkSim.Outcome) -> String {
        let what = outcome.violation.map { "BROKE AN INVARIANT at \(Double($0.atNs) / 1e9) s: \($0.what)" } ?? "no invariant broken"
        return "seed \(outcome.seed): \(what); \(outcome.events) events, \(outcome.faults) faults, \(outcome.paid) payments paid, "
            + "\(outcome.refused) refused, \(outcome.deliveries) deliveries" + String(format: ", digest %016llx", outcome.digest)
    }

    func settings() throws -> LeaseElectionSim.Settings {
        var settings = LeaseElectionSim.Settings()
        settings.faults.kinds = try faultKinds()
        settings.faults.loss = loss
        settings.faults.slow = slow
        settings.faults.drift = drift
        settings.faulty = .seconds(faultySeconds ?? 60)
        settings.quiet = .seconds(quietSeconds ?? 20)
        if shard { settings.shard = ShardSettings() }
        return settings
    }

    func zooKeeperSettings() throws -> ZooKeeperElectionSim.Settings {
        var settings = ZooKeeperElectionSim.Settings()
        settings.faults.kinds = try faultKinds()
        (settings.faults.loss, settings.faults.slow, settings.faults.drift) = (loss, slow, drift)
        settings.faulty = .seconds(faultySeconds ?? 60)
        settings.quiet = .seconds(quietSeconds ?? 20)
        return settings
    }

    func clusterSettings() throws -> NotaryClusterSim.Settings {
        var settings = NotaryClusterSim.Settings()
        settings.faults = try Self.kinds(ClusterFault.self, faults, of: "the cluster")
        settings.mutation = try Self.named(ClusterMutation.self, mutation, of: "the cluster")
        (settings.loss, settings.slow, settings.duplicate) = (loss, slow, duplicate)
        if let faultySeconds { settings.faulty = .seconds(faultySeconds) }
        if let quietSeconds { settings.quiet = .seconds(quietSeconds) }
        return settings
    }

    func sessionSettings() throws -> SessionNetworkSim.Settings {
        var settings = SessionNetworkSim.Settings()
        settings.faults = try Self.kinds(SessionFault.self, faults, of: "sessions")
        settings.mutation = try Self.named(SessionMutation.self, mutation, of: "sessions")
        (settings.loss, settings.slow, settings.duplicate) = (loss, slow, duplicate)
        if let faultySeconds { settings.faulty = .seconds(faultySeconds) }
        if let quietSeconds { settings.quiet = .seconds(quietSeconds) }
        return settings
    }

    /// `--mutation` as a `Mutation` of the model, if given.
    static func named<Mutation: RawRepresentable & CaseIterable>(_ type: Mutation.Type, _ name: String?, of model: String) throws -> Mutation?
    where Mutation.RawValue == String {
        guard let name else { return nil }
        guard let mutation = Mutation(rawValue: name) else {
            throw ValidationError("--mutation: unknown mutation \(name) of \(model); known: \(Mutation.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return mutation
    }

    /// `--faults` as a set of `Kind`: all, none, or names separated by commas.
    static func kinds<Kind: RawRepresentable & CaseIterable & Hashable>(_ kind: Kind.Type, _ faults: String, of model: String) throws -> Set<Kind>
    where Kind.RawValue == String {
        switch faults {
        case "all": return Set(Kind.allCases)
        case "none": return []
        default:
            // An empty list (`--faults "$UNSET"`) meant none, without a word, and its replay line
            // could not be run (found from outside): `none` is said so.
            let names = faults.split(separator: ",", omittingEmptySubsequences: false)
            if names.contains(where: \.isEmpty) {
                throw ValidationError("--faults: an empty fault name in \"\(faults.prefix(100))\"; give fault names separated by commas, or all or none")
            }
            return Set(try names.map { name in
                guard let kind = Kind(rawValue: String(name)) else {
                    throw ValidationError("--faults: unknown fault \(name) of \(model); known: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")), or all or none")
                }
                return kind
            })
        }
    }

    func seedList() throws -> [UInt64] {
        guard let list = SeedList.parse(seeds) else {
            throw ValidationError("--seeds must be N, FIRST-LAST (FIRST <= LAST) or A,B,C, at most \(SeedList.maxSeeds) seeds, not \(seeds.prefix(100))")
        }
        return list
    }

    func faultKinds() throws -> Set<SimFault> { try Self.kinds(SimFault.self, faults, of: "the election") }

    /// The options that shape a run, as given, for the replay line.
    private func replayOptions() -> String {
        var options = model == .election ? [] : ["--model \(model.rawValue)"]
        if shard { options.append("--shard") }
        if faults != "all" { options.append("--faults \(faults)") }
        if let mutation { options.append("--mutation \(mutation)") }
        options += ["--loss \(loss)", "--slow \(slow)"]
        options += model == .election || model == .zookeeper ? ["--drift \(drift)"] : ["--duplicate \(duplicate)"]
        if let faultySeconds { options.append("--faulty-seconds \(faultySeconds)") }
        if let quietSeconds { options.append("--quiet-seconds \(quietSeconds)") }
        return options.joined(separator: " ")
    }
}
