import Coordination
import Embedded
import Foundation
import Logging
import Postgres
import ZooKeeperElection

/// Where an election lives (exactly one of ZooKeeper, a PostgreSQL lease, a SQLite lease) and its
/// timing. One set of names for every place that configures an election: node.json's
/// `ha.election` and the options of `hawser election run`, `hawser admin` and the watchdog, so a
/// name means one thing everywhere (docs/coordination.md). Builds the election and its
/// administration; `problems()` says everything wrong at once.
public struct ElectionSettings: Codable, Sendable, Equatable {
    /// ZooKeeper ensemble, `host:port[,host:port...]`.
    public var zookeeper: String?
    /// ZooKeeper: a file holding `user:password`, the digest identity owning the election's nodes.
    public var zookeeperCredentials: String?
    /// PostgreSQL lease: `postgres://user[:password]@host[:port]/database`.
    public var postgres: String?
    /// SQLite lease file (candidates on one machine only).
    public var sqlite: String?
    public var election = "default"
    public var sessionTimeoutMs = 2000
    public var checkIntervalMs = 250
    public var leaseMs = 2000
    public var renewMs = 500
    public var standAsideMs = 4000
    public var holdDownMs = 10000
    public var requestTimeoutMs = 1000

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case zookeeper, zookeeperCredentials, postgres, sqlite, election, sessionTimeoutMs, checkIntervalMs, leaseMs, renewMs,
             standAsideMs, holdDownMs, requestTimeoutMs
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ElectionSettings()
        zookeeper = try c.decodeIfPresent(String.self, forKey: .zookeeper)
        zookeeperCredentials = try c.decodeIfPresent(String.self, forKey: .zookeeperCredentials)
        postgres = try c.decodeIfPresent(String.self, forKey: .postgres)
        sqlite = try c.decodeIfPresent(String.self, forKey: .sqlite)
        election = try c.decodeIfPresent(String.self, forKey: .election) ?? d.election
        sessionTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .sessionTimeoutMs) ?? d.sessionTimeoutMs
        checkIntervalMs = try c.decodeIfPresent(Int.self, forKey: .checkIntervalMs) ?? d.checkIntervalMs
        leaseMs = try c.decodeIfPresent(Int.self, forKey: .leaseMs) ?? d.leaseMs
        renewMs = try c.decodeIfPresent(Int.self, forKey: .renewMs) ?? d.renewMs
        standAsideMs = try c.decodeIfPresent(Int.self, forKey: .standAsideMs) ?? d.standAsideMs
        holdDownMs = try c.decodeIfPresent(Int.self, forKey: .holdDownMs) ?? d.holdDownMs
        requestTimeoutMs = try c.decodeIfPresent(Int.self, forKey: .requestTimeoutMs) ?? d.requestTimeoutMs
    }

    /// The longest any of the timings may be: one day. Longer ones are typing mistakes, and
    /// adding them to a clock reading would overflow it.
    public static let maxMs = 86_400_000

    /// Every problem at once, each naming the setting as `prefix` + its name; empty when valid.
    public func problems(prefix: String = "") -> [String] {
        problems { prefix + $0 }
    }

    /// Every problem at once, each naming the setting as `name` turns its field name (`leaseMs`)
    /// into what the user wrote (`ha.election.leaseMs`, `--lease-ms`); empty when valid.
    public func problems(naming name: (String) -> String) -> [String] {
        let chosen = [zookeeper, postgres, sqlite].compactMap { $0 }
        guard chosen.count == 1 else {
            return ["give exactly one election back end: \(name("zookeeper")), \(name("postgres")) or \(name("sqlite"))"]
        }
        var problems = timings.filter { $0.1 < 0 || $0.1 > Self.maxMs }.map { "\(name($0.0)) must be 0 to \(Self.maxMs) ms (a day), not \($0.1)" }
        // A timing of the other back end would be silently ignored: one set away from its default is refused.
        let unused: Set = zookeeper != nil ? ["leaseMs", "renewMs", "standAsideMs"] : ["sessionTimeoutMs", "checkIntervalMs"]
        for field in timingsChanged(from: ElectionSettings()) where unused.contains(field) {
            problems.append("\(name(field)) is for \(zookeeper != nil ? "a lease (\(name("postgres")), \(name("sqlite")))" : name("zookeeper")): this election does not use it")
        }
        guard problems.isEmpty else { return problems }
        if zookeeper != nil {
            if sessionTimeoutMs < 400 || sessionTimeoutMs > 60_000 {
                problems.append("\(name("sessionTimeoutMs")) must be 400 to 60000 ms (the ensemble clamps it to 2-20 ticks)")
            }
            if checkIntervalMs < 10 || checkIntervalMs * 3 > sessionTimeoutMs {
                problems.append("\(name("checkIntervalMs")) must be 10 ms to a third of \(name("sessionTimeoutMs")), so a leader confirms its place at least twice before it must stop")
            }
            if requestTimeoutMs < 1 { problems.append("\(name("requestTimeoutMs")) must be at least 1 ms") }
            guard problems.isEmpty else { return problems }
            // The ensemble, the credentials and the name (the timings passed above, by these names).
            do { return try zooKeeperConfiguration().problems() } catch { return ["\(name("zookeeperCredentials")): \(error)"] }
        }
        if leaseMs < 200 { problems.append("\(name("leaseMs")) must be at least 200 ms") }
        if renewMs < 10 || renewMs * 3 > leaseMs {
            problems.append("\(name("renewMs")) must be 10 ms to a third of \(name("leaseMs")), so a leader renews at least twice before its lease could lapse")
        }
        // In durations, as `LeaseConfiguration` checks it (a tenth of an odd lease is a fraction).
        let lease = Duration.milliseconds(leaseMs)
        if requestTimeoutMs < 1 || .milliseconds(requestTimeoutMs) > lease - lease / 10 - .milliseconds(renewMs) {
            problems.append("\(name("requestTimeoutMs")) must be 1 ms to \(name("leaseMs")) - \(name("leaseMs"))/10 - \(name("renewMs"))")
        }
        if problems.isEmpty { problems += leaseConfiguration().problems() }  // the election's name
        if zookeeperCredentials != nil { problems.append("\(name("zookeeperCredentials")) goes with \(name("zookeeper")) only") }
        if let sqlite { problems += Self.leaseFileProblems(sqlite, option: name("sqlite")) }
        if let postgres, (try? PostgresURL.configuration(postgres)) == nil {
            problems.append("\(name("postgres")) must be a URL of the form postgres://user[:password]@host[:port]/database")
        }
        return problems
    }

    /// The SQLite lease file must be named, and not be a directory (`""` and `"."` passed, to
    /// fail later naming no option). Its directory is made if it is missing.
    static func leaseFileProblems(_ path: String, option: String) -> [String] {
        guard !path.isEmpty else { return ["\(option) must name a file"] }
        guard !path.hasSuffix("/") else { return ["\(option) \(path) ends in /: name the lease file, not a directory"] }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return ["\(option) \(path) is a directory: name the lease file in it"]
        }
        return []
    }

    /// Every timing, by its field's name.
    var timings: [(String, Int)] {
        [("sessionTimeoutMs", sessionTimeoutMs), ("checkIntervalMs", checkIntervalMs), ("leaseMs", leaseMs), ("renewMs", renewMs),
         ("standAsideMs", standAsideMs), ("holdDownMs", holdDownMs), ("requestTimeoutMs", requestTimeoutMs)]
    }

    /// The names of the timings that differ from `other`'s.
    public func timingsChanged(from other: ElectionSettings) -> [String] {
        zip(timings, other.timings).filter { $0.0.1 != $0.1.1 }.map(\.0.0)
    }

    /// How often a candidate acts on its own: a ZooKeeper check, or a lease renewal.
    public var roundMs: Int { zookeeper != nil ? checkIntervalMs : renewMs }

    /// These settings with relative file names taken relative to `directory`.
    public func resolved(against directory: String) -> ElectionSettings {
        // An empty name, or one ending in `/`, stays as written for `problems` to refuse (resolved,
        // the one would name the directory and the other would lose its `/`).
        func resolve(_ path: String?) -> String? {
            path.map { $0.hasPrefix("/") || $0.isEmpty || $0.hasSuffix("/") ? $0 : URL(fileURLWithPath: directory).appendingPathComponent($0).path }
        }
        var copy = self
        copy.sqlite = resolve(sqlite)
        copy.zookeeperCredentials = resolve(zookeeperCredentials)
        return copy
    }

    public func zooKeeperConfiguration() throws -> ZooKeeperElectionConfiguration {
        var configuration = ZooKeeperElectionConfiguration(connectString: zookeeper ?? "", credentials: try credentials())
        configuration.name = election
        configuration.sessionTimeout = .milliseconds(sessionTimeoutMs)
        configuration.checkInterval = .milliseconds(checkIntervalMs)
        configuration.holdDown = .milliseconds(holdDownMs)
        configuration.requestTimeout = .milliseconds(max(requestTimeoutMs, sessionTimeoutMs))
        return configuration
    }

    /// Read from a file, so the password shows neither in `ps`, nor in shell history, nor in node.json.
    private func credentials() throws -> ZooKeeperCredentials {
        guard let path = zookeeperCredentials else {
            throw CoordinationError.invalidConfiguration(
                "zookeeper needs zookeeperCredentials, a file holding a line user:password: the election's nodes are protected by a digest ACL")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CoordinationError.invalidConfiguration("cannot read the ZooKeeper credentials file \(path)")
        }
        guard let credentials = ZooKeeperCredentials.parse(text) else {
            throw CoordinationError.invalidConfiguration("the ZooKeeper credentials file \(path) must hold one line user:password")
        }
        return credentials
    }

    public func leaseConfiguration() -> LeaseConfiguration {
        var configuration = LeaseConfiguration()
        configuration.name = election
        configuration.leaseDuration = .milliseconds(leaseMs)
        configuration.renewInterval = .milliseconds(renewMs)
        configuration.standAside = .milliseconds(standAsideMs)
        configuration.holdDown = .milliseconds(holdDownMs)
        configuration.requestTimeout = .milliseconds(requestTimeoutMs)
        return configuration
    }

    /// `administration`: for an operator's command, which may wait longer for another process's
    /// SQLite transaction than a round may (a busy leader's fsynced round can take longer than half
    /// a short request time-out on a loaded machine), up to `administrationBusyTimeout`.
    public func leaseBackend(administration: Bool = false) throws -> any LeaseBackend {
        if let postgres {
            return PostgresLeaseBackend(configuration: try PostgresURL.configuration(postgres),
                                        requestTimeout: .milliseconds(requestTimeoutMs))
        }
        guard let sqlite else { throw CoordinationError.invalidConfiguration("no election back end is configured") }
        return try SQLiteLeaseBackend(path: sqlite, roundsOf: leaseConfiguration(), atLeast: administration ? Self.administrationBusyTimeout : .zero)
    }

    public static let administrationBusyTimeout = Duration.seconds(5)

    /// What the partition elections of one process share (`ElectionConnections`).
    public func partitionConnections() throws -> ElectionConnections {
        // Not on SQLite, whose administrations wait longer for the file than a round may.
        ElectionConnections(lease: postgres == nil ? nil : SharedLeaseBackend(try leaseBackend()),
                            zooKeeper: zookeeper == nil ? nil : ZooKeeperSharedSession())
    }

    /// The election's timing (how long a leadership lasts after each confirmation, and so how
    /// long one given up is kept while its work stops).
    public func timing() throws -> ElectionTiming {
        zookeeper != nil ? try zooKeeperConfiguration().timing : leaseConfiguration().timing
    }

    /// The election, on the process's shared connections if given.
    public func makeElection(candidate: Candidate, health: HealthChecks, logger: Logger,
                             sharing shared: ElectionConnections? = nil) throws -> any Election {
        if zookeeper != nil {
            return try ZooKeeperElection(candidate: candidate, configuration: try zooKeeperConfiguration(), health: health,
                                         sharing: shared?.zooKeeper, logger: logger)
        }
        return try LeaseElection(candidate: candidate, backend: try shared?.lease ?? leaseBackend(), configuration: leaseConfiguration(),
                                 health: health, logger: logger)
    }

    /// The election's administration, on the process's shared connections if given.
    public func makeAdministration(sharing shared: ElectionConnections? = nil) throws -> any ElectionAdministration {
        if zookeeper != nil {
            return try ZooKeeperElectionAdministration(configuration: try zooKeeperConfiguration(), session: shared?.zooKeeper)
        }
        return LeaseAdministration(backend: try shared?.lease ?? leaseBackend(administration: true), configuration: leaseConfiguration())
    }

    /// The election's state, read through an administration of its own (on the shared connections
    /// if given), closed after.
    public func snapshot(sharing shared: ElectionConnections? = nil) async throws -> ElectionSnapshot {
        let administration = try makeAdministration(sharing: shared)
        do {
            let snapshot = try await administration.snapshot()
            await administration.close()
            return snapshot
        } catch {
            await administration.close()
            throw error
        }
    }

    /// Partition `k`'s election of a hot-hot node (and of `hawser election run --partitions`):
    /// these settings with the election named `<election>.p<k>`.
    public func partition(_ k: Int) -> ElectionSettings {
        var copy = self
        copy.election += ".p\(k)"
        return copy
    }

    /// A hot-hot node's outbox election (docs/node.md, "Roles"): these settings with the election
    /// named `<election>.outbox`.
    public var outbox: ElectionSettings {
        var copy = self
        copy.election += ".outbox"
        return copy
    }
}

/// The connections the partition elections of one process share, so that their number does not
/// grow with the partitions': on a PostgreSQL lease one connection for every round and
/// administration (`SharedLeaseBackend`; one each made a process of 16 partitions hold 32, and
/// three went past a default server's 100), on ZooKeeper one session for every election and
/// administration (`ZooKeeperSharedSession`; one each made a process of 16 partitions hold 18, and
/// a fourth such process on one machine went past a default server's `maxClientCnxns` of 60).
/// Closed by their owner once the elections and administrations have stopped.
public struct ElectionConnections: Sendable {
    public let lease: SharedLeaseBackend?
    public let zooKeeper: ZooKeeperSharedSession?

    public func close() async {
        await lease?.closeShared()
        await zooKeeper?.close()
    }
}
