import ArgumentParser
import Foundation
import Coordination
import HawserNode
import Logging
import ZooKeeperElection

/// Where an election lives and its timing: shared by `hawser election` and `hawser admin`.
struct CoordinationOptions: ParsableArguments {
    @Option(name: .customLong("zookeeper"),
            help: "ZooKeeper ensemble, host:port[,host:port...], every server with its port (default: $HAWSER_ZOOKEEPER).")
    var zookeeperOption: String?
    @Option(help: ArgumentHelp("ZooKeeper: file holding user:password, the digest identity that owns the election's nodes (required with --zookeeper).",
                               valueName: "file")) var zookeeperCredentials: String?
    @Option(name: .customLong("postgres"), help: "PostgreSQL lease: postgres://user[:password]@host[:port]/database (default: $HAWSER_POSTGRES).")
    var postgresOption: String?
    @Option(name: .customLong("sqlite"), help: "SQLite lease file, candidates on this machine only (default: $HAWSER_SQLITE).")
    var sqliteOption: String?
    @Option(name: .customLong("election"), help: "The election's name (several can share a store; default: default, or with --node-config its ha.election's).")
    var electionOption: String?
    @Option(help: "ZooKeeper session timeout (ms).") var sessionTimeoutMs = ElectionSettings().sessionTimeoutMs
    @Option(help: "ZooKeeper: how often a candidate runs a round: health, switchover, preferred master, its own node (ms); at most a third of the session timeout.")
    var checkIntervalMs = ElectionSettings().checkIntervalMs
    @Option(help: "Lease duration (ms), judged by the database's clock.") var leaseMs = ElectionSettings().leaseMs
    @Option(help: "Lease renew and acquire interval (ms).") var renewMs = ElectionSettings().renewMs
    @Option(help: "Lease: how long a resigned or unhealthy candidate stands aside (ms).") var standAsideMs = ElectionSettings().standAsideMs
    @Option(help: "How long the preferred master must stand before leadership moves to it (ms).") var holdDownMs = ElectionSettings().holdDownMs
    @Option(help: "Bound on one request to the coordination store (ms). Lease: a hand-over reserves the lease for --renew-ms plus this.")
    var requestTimeoutMs = ElectionSettings().requestTimeoutMs
    @Option(help: ArgumentHelp("Take the store, the election's name (unless --election is given) and its timings from a node's configuration (its ha.election, file names relative to it), in place of the options above.",
                               valueName: "node.json")) var nodeConfig: String?

    /// The store: the options if any is given, else `HAWSER_ZOOKEEPER`, `HAWSER_POSTGRES` and
    /// `HAWSER_SQLITE`, so that a shell sets it once and a PostgreSQL password stays out of the
    /// command line (which every user of the machine can read).
    static func store(options: [String?], environment: [String: String]) -> [String?] {
        guard options.allSatisfy({ $0 == nil }) else { return options }
        return ["HAWSER_ZOOKEEPER", "HAWSER_POSTGRES", "HAWSER_SQLITE"].map { environment[$0].flatMap { $0.isEmpty ? nil : $0 } }
    }

    private var chosenStore: [String?] {
        Self.store(options: [zookeeperOption, postgresOption, sqliteOption], environment: ProcessInfo.processInfo.environment)
    }
    var zookeeper: String? { chosenStore[0] }
    var postgres: String? { chosenStore[1] }
    var sqlite: String? { chosenStore[2] }
    var election: String {
        get { electionOption ?? "default" }
        set { electionOption = newValue }
    }

    /// The options as `ElectionSettings`, the one place that validates them and builds the
    /// election (node.json's `ha.election` uses the same).
    var settings: ElectionSettings {
        var settings = ElectionSettings()
        settings.zookeeper = zookeeper
        settings.zookeeperCredentials = zookeeperCredentials
        settings.postgres = postgres
        settings.sqlite = sqlite
        settings.election = election
        settings.sessionTimeoutMs = sessionTimeoutMs
        settings.checkIntervalMs = checkIntervalMs
        settings.leaseMs = leaseMs
        settings.renewMs = renewMs
        settings.standAsideMs = standAsideMs
        settings.holdDownMs = holdDownMs
        settings.requestTimeoutMs = requestTimeoutMs
        return settings
    }

    mutating func validate() throws {
        if let nodeConfig { try adopt(nodeConfig) }
        guard [zookeeper, postgres, sqlite].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --zookeeper, --postgres, --sqlite (or set exactly one of HAWSER_ZOOKEEPER, HAWSER_POSTGRES, HAWSER_SQLITE)")
        }
        if zookeeper != nil, zookeeperCredentials == nil {
            throw ValidationError("--zookeeper needs --zookeeper-credentials FILE (a line user:password): the election's nodes are protected by a digest ACL")
        }
        if zookeeper == nil, zookeeperCredentials != nil { throw ValidationError("--zookeeper-credentials goes with --zookeeper only") }
        let problems = settings.problems(naming: Self.option)
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "; ")) }
    }

    /// Sets every option from the `ha.election` of the node configuration at `path`, so that an
    /// operator need not retype the store's address (a password in it) and the election's name.
    private mutating func adopt(_ path: String) throws {
        guard [zookeeperOption, zookeeperCredentials, postgresOption, sqliteOption].allSatisfy({ $0 == nil }) else {
            throw ValidationError("--node-config names the election's store: give none of --zookeeper, --zookeeper-credentials, --postgres and --sqlite with it")
        }
        // Its timings replace the options', so an option set away from its default would be lost.
        let given = settings.timingsChanged(from: ElectionSettings()).map(Self.option)
        guard given.isEmpty else {
            throw ValidationError("--node-config takes the election's timings from the file: give none of \(given.joined(separator: ", ")) with it")
        }
        let node: NodeConfiguration
        do { node = try NodeConfiguration.load(path) } catch { throw ValidationError("--node-config \(path): \(error)") }
        guard let settings = node.ha.election?.resolved(against: URL(fileURLWithPath: path).deletingLastPathComponent().path) else {
            // A hot-cold node's election is its watchdog's, given on the watchdog's command line.
            let why = node.ha.mode == .hotCold ? "its watchdog stands in the election (ha.mode hot-cold): give the watchdog's election options"
                : "its node runs alone (ha.mode \(node.ha.mode.rawValue))"
            throw ValidationError("--node-config \(path) has no ha.election: \(why)")
        }
        (zookeeperOption, zookeeperCredentials, postgresOption, sqliteOption) = (settings.zookeeper, settings.zookeeperCredentials, settings.postgres, settings.sqlite)
        // A name given beside it wins: the node's other elections (`<election>.outbox`, `.p3`) share its store.
        if electionOption == nil { election = settings.election }
        (sessionTimeoutMs, checkIntervalMs, leaseMs, renewMs) = (settings.sessionTimeoutMs, settings.checkIntervalMs, settings.leaseMs, settings.renewMs)
        (standAsideMs, holdDownMs, requestTimeoutMs) = (settings.standAsideMs, settings.holdDownMs, settings.requestTimeoutMs)
    }

    /// The command-line option of an `ElectionSettings` field: `leaseMs` is `--lease-ms`.
    static func option(_ field: String) -> String {
        "--" + field.reduce(into: "") { name, character in
            if character.isUppercase { name += "-" + character.lowercased() } else { name.append(character) }
        }
    }

    /// The options of partition `k`'s election, `<election>.p<k>` (`hawser election run --partitions`).
    func partition(_ k: Int) -> CoordinationOptions {
        var copy = self
        copy.election = settings.partition(k).election
        return copy
    }

    func zooKeeperConfiguration() throws -> ZooKeeperElectionConfiguration { try settings.zooKeeperConfiguration() }
    func leaseConfiguration() -> LeaseConfiguration { settings.leaseConfiguration() }
    func leaseBackend() throws -> any LeaseBackend { try settings.leaseBackend() }

    func makeElection(candidate: Candidate, health: HealthChecks, logger: Logger, sharing shared: ElectionConnections? = nil) throws -> any Election {
        try settings.makeElection(candidate: candidate, health: health, logger: logger, sharing: shared)
    }

    func makeAdministration(sharing shared: ElectionConnections? = nil) throws -> any ElectionAdministration {
        try settings.makeAdministration(sharing: shared)
    }
}

extension Candidate {
    /// `validate(id:)` for a command-line value: a usage error (exit 64, with the usage), as every
    /// other bad option is, rather than a failure of the command.
    static func validateOption(_ id: String) throws {
        do { try validate(id: id) } catch { throw ValidationError("\(error)") }
    }
}
