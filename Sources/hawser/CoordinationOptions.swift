import ArgumentParser
import Coordination
import Embedded
import Foundation
import Logging
import Postgres
import ZooKeeperElection

/// Where an election lives and its timing: shared by `hawser election` and `hawser admin`.
struct CoordinationOptions: ParsableArguments {
    @Option(name: .customLong("zookeeper"), help: "ZooKeeper ensemble, host:port[,host:port...] (default: $HAWSER_ZOOKEEPER).")
    var zookeeperOption: String?
    @Option(name: .customLong("postgres"), help: "PostgreSQL lease: postgres://user[:password]@host[:port]/database (default: $HAWSER_POSTGRES).")
    var postgresOption: String?
    @Option(name: .customLong("sqlite"), help: "SQLite lease file, candidates on this machine only (default: $HAWSER_SQLITE).")
    var sqliteOption: String?
    @Option(help: "The election's name (several can share a store).") var election = "default"
    @Option(help: "ZooKeeper session timeout (ms).") var sessionTimeoutMs = 2000
    @Option(help: "ZooKeeper: how often health, switchover and preferred master are checked (ms).") var checkIntervalMs = 250
    @Option(help: "Lease duration (ms), judged by the database's clock.") var leaseMs = 2000
    @Option(help: "Lease renew and acquire interval (ms).") var renewMs = 500
    @Option(help: "Lease: how long a resigned candidate stands aside (ms).") var standAsideMs = 4000
    @Option(help: "How long the preferred master must stand before leadership moves to it (ms).") var holdDownMs = 10000
    @Option(help: "Bound on one request to the coordination store (ms).") var requestTimeoutMs = 1000

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
            let problems = zooKeeperConfiguration().problems()
            if !problems.isEmpty { throw ValidationError(problems.joined(separator: "; ")) }
        } else {
            let problems = leaseConfiguration().problems()
            if !problems.isEmpty { throw ValidationError(problems.joined(separator: "; ")) }
            if let postgres { _ = try PostgresURL.configuration(postgres) }
        }
    }

    func zooKeeperConfiguration() -> ZooKeeperElectionConfiguration {
        var configuration = ZooKeeperElectionConfiguration(connectString: zookeeper ?? "")
        configuration.name = election
        configuration.sessionTimeout = .milliseconds(sessionTimeoutMs)
        configuration.checkInterval = .milliseconds(checkIntervalMs)
        configuration.holdDown = .milliseconds(holdDownMs)
        configuration.requestTimeout = .milliseconds(max(requestTimeoutMs, sessionTimeoutMs))
        return configuration
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
            return try ZooKeeperElection(candidate: candidate, configuration: zooKeeperConfiguration(), health: health, logger: logger)
        }
        return try LeaseElection(candidate: candidate, backend: try leaseBackend(), configuration: leaseConfiguration(),
                                 health: health, logger: logger)
    }

    func makeAdministration() throws -> any ElectionAdministration {
        if zookeeper != nil { return try ZooKeeperElectionAdministration(configuration: zooKeeperConfiguration()) }
        return LeaseAdministration(backend: try leaseBackend(), configuration: leaseConfiguration())
    }
}
