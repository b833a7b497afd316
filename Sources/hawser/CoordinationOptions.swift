import ArgumentParser
import Foundation
import Coordination
import Embedded
import Logging
import Postgres
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
    @Option(help: "The election's name (several can share a store).") var election = "default"
    @Option(help: "ZooKeeper session timeout (ms).") var sessionTimeoutMs = 2000
    @Option(help: "ZooKeeper: how often a candidate runs a round: health, switchover, preferred master, its own node (ms); at most a third of the session timeout.") var checkIntervalMs = 250
    @Option(help: "Lease duration (ms), judged by the database's clock.") var leaseMs = 2000
    @Option(help: "Lease renew and acquire interval (ms).") var renewMs = 500
    @Option(help: "Lease: how long a resigned or unhealthy candidate stands aside (ms).") var standAsideMs = 4000
    @Option(help: "How long the preferred master must stand before leadership moves to it (ms).") var holdDownMs = 10000
    @Option(help: "Bound on one request to the coordination store (ms). Lease: a hand-over reserves the lease for --renew-ms plus this.") var requestTimeoutMs = 1000

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

    func validate() throws {
        let chosen = [zookeeper, postgres, sqlite].compactMap { $0 }
        guard chosen.count == 1 else {
            throw ValidationError("give exactly one of --zookeeper, --postgres, --sqlite (or set exactly one of HAWSER_ZOOKEEPER, HAWSER_POSTGRES, HAWSER_SQLITE)")
        }
        if zookeeper != nil {
            let problems = try zooKeeperConfiguration().problems()
            if !problems.isEmpty { throw ValidationError(problems.joined(separator: "; ")) }
        } else {
            if zookeeperCredentials != nil { throw ValidationError("--zookeeper-credentials goes with --zookeeper only") }
            let problems = leaseConfiguration().problems()
            if !problems.isEmpty { throw ValidationError(problems.joined(separator: "; ")) }
            if let postgres { _ = try PostgresURL.configuration(postgres) }
        }
    }

    func zooKeeperConfiguration() throws -> ZooKeeperElectionConfiguration {
        var configuration = ZooKeeperElectionConfiguration(connectString: zookeeper ?? "", credentials: try credentials())
        configuration.name = election
        configuration.sessionTimeout = .milliseconds(sessionTimeoutMs)
        configuration.checkInterval = .milliseconds(checkIntervalMs)
        configuration.holdDown = .milliseconds(holdDownMs)
        configuration.requestTimeout = .milliseconds(max(requestTimeoutMs, sessionTimeoutMs))
        return configuration
    }

    /// Read from a file, so the password shows neither in `ps` nor in shell history.
    private func credentials() throws -> ZooKeeperCredentials {
        guard let path = zookeeperCredentials else {
            throw ValidationError("--zookeeper needs --zookeeper-credentials FILE (a line user:password): the election's nodes are protected by a digest ACL")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read the ZooKeeper credentials file \(path)")
        }
        guard let credentials = ZooKeeperCredentials.parse(text) else {
            throw ValidationError("the ZooKeeper credentials file \(path) must hold one line user:password")
        }
        return credentials
    }

    func leaseConfiguration() -> LeaseConfiguration {
        var configuration = LeaseConfiguration()
        configuration.name = election
        configuration.leaseDuration = .milliseconds(leaseMs)
        configuration.renewInterval = .milliseconds(renewMs)
        configuration.standAside = .milliseconds(standAsideMs)
        configuration.holdDown = .milliseconds(holdDownMs)
        configuration.requestTimeout = .milliseconds(requestTimeoutMs)
        return configuration
    }

    func leaseBackend() throws -> any LeaseBackend {
        if let postgres {
            return PostgresLeaseBackend(configuration: try PostgresURL.configuration(postgres),
                                        requestTimeout: .milliseconds(requestTimeoutMs))
        }
        return try SQLiteLeaseBackend(path: sqlite!, busyTimeout: .milliseconds(requestTimeoutMs / 2))
    }

    func makeElection(candidate: Candidate, health: HealthChecks, logger: Logger) throws -> any Election {
        if zookeeper != nil {
            return try ZooKeeperElection(candidate: candidate, configuration: try zooKeeperConfiguration(), health: health, logger: logger)
        }
        return try LeaseElection(candidate: candidate, backend: try leaseBackend(), configuration: leaseConfiguration(),
                                 health: health, logger: logger)
    }

    func makeAdministration() throws -> any ElectionAdministration {
        if zookeeper != nil { return try ZooKeeperElectionAdministration(configuration: try zooKeeperConfiguration()) }
        return LeaseAdministration(backend: try leaseBackend(), configuration: leaseConfiguration())
    }
}
