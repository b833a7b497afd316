import Foundation
import Flows
import HawserCore
import Notary

/// The all-in-one node's configuration file (JSON; docs/node.md documents every field). Unknown
/// fields are refused so that a misspelt option cannot be silently ignored.
public struct NodeConfiguration: Codable, Sendable, Equatable {
    public struct Party: Codable, Sendable, Equatable {
        public var name: String
        /// The party's key file, relative to the configuration file's directory.
        public var keyFile: String
        enum CodingKeys: String, CodingKey, CaseIterable { case name, keyFile }
        public init(name: String, keyFile: String) {
            self.name = name
            self.keyFile = keyFile
        }
    }

    public struct Hospital: Codable, Sendable, Equatable {
        public var initialDelayMillis = 100
        public var maxDelayMillis = 60_000
        public var maxAttempts = 20
        public init() {}
        enum CodingKeys: String, CodingKey, CaseIterable { case initialDelayMillis, maxDelayMillis, maxAttempts }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            initialDelayMillis = try c.decodeIfPresent(Int.self, forKey: .initialDelayMillis) ?? initialDelayMillis
            maxDelayMillis = try c.decodeIfPresent(Int.self, forKey: .maxDelayMillis) ?? maxDelayMillis
            maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? maxAttempts
        }
        var policy: HospitalPolicy {
            HospitalPolicy(initialDelay: .milliseconds(initialDelayMillis), maxDelay: .milliseconds(maxDelayMillis),
                           maxAttempts: maxAttempts)
        }
    }

    /// How RPC passwords are checked: failed attempts allowed per source and per user, and the
    /// threads that compute password hashes (docs/node.md).
    public struct RPCLogin: Codable, Sendable, Equatable {
        public var attemptsPerSource = 20
        public var attemptsPerUser = 10
        public var refillMillis = 6_000
        public var checkThreads = 1
        public init() {}
        enum CodingKeys: String, CodingKey, CaseIterable { case attemptsPerSource, attemptsPerUser, refillMillis, checkThreads }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            attemptsPerSource = try c.decodeIfPresent(Int.self, forKey: .attemptsPerSource) ?? attemptsPerSource
            attemptsPerUser = try c.decodeIfPresent(Int.self, forKey: .attemptsPerUser) ?? attemptsPerUser
            refillMillis = try c.decodeIfPresent(Int.self, forKey: .refillMillis) ?? refillMillis
            checkThreads = try c.decodeIfPresent(Int.self, forKey: .checkThreads) ?? checkThreads
        }
        var throttleLimits: LoginThrottle.Limits {
            LoginThrottle.Limits(perSource: attemptsPerSource, perUser: attemptsPerUser, refill: .milliseconds(refillMillis))
        }
        var problems: [String] {
            var out = [String]()
            if attemptsPerSource < 1 { out.append("rpcLogin.attemptsPerSource must be at least 1") }
            if attemptsPerUser < 1 { out.append("rpcLogin.attemptsPerUser must be at least 1") }
            if !(1...3_600_000).contains(refillMillis) { out.append("rpcLogin.refillMillis must be 1...3600000") }
            if !(1...64).contains(checkThreads) { out.append("rpcLogin.checkThreads must be 1...64") }
            return out
        }
    }

    /// The node's own legal name (for logs and the identity endpoint).
    public var name = "O=Hawser Node, L=London, C=GB"
    /// Where the node database (unless `database` says PostgreSQL) and the embedded notary's log and store live.
    public var dataDirectory = "data"
    /// Where the node keeps flows, journals, outbox and vault: SQLite (the default) or PostgreSQL.
    public var database = NodeDatabaseConfiguration()
    public var listen = NotaryConfiguration.Listen()
    /// The embedded notary's name and key file (nil: `defaultNotaryName`, `defaultNotaryKeyFile`);
    /// absent when the notary is remote.
    public var notaryName: String?
    public var notaryKeyFile: String?
    /// Which notary the flows use: the embedded one (the default) or a remote one.
    public var notary = NodeNotaryConfiguration()
    /// The parties this node hosts: flows sign as them.
    public var parties: [Party] = []
    /// Who may call the RPC API, with what permissions (docs/node.md).
    public var rpcUsers: [RPCUser] = []
    public var rpcLogin = RPCLogin()
    public var hospital = Hospital()
    /// Most flow-store writes committed in one transaction (group commit).
    public var maxWritesPerCommit = 1_000
    /// Largest request body the RPC API accepts.
    public var maxBodyBytes = 1024 * 1024
    /// The bytes of request bodies the RPC API takes at once, over all connections (`BodyBudget`).
    public var maxBodyBytesInFlight = 8 * 1024 * 1024
    /// How many connections the HTTP API holds open, and how long a peer may take to send a request.
    public var http = HTTPSettings()
    /// High availability: single (the default), hot-warm, hot-cold or hot-hot (docs/node.md).
    public var ha = HAConfiguration()
    /// The network the node is a member of (docs/network.md); nil: a node on its own.
    public var network: NodeNetworkConfiguration?
    /// Flow sessions with other nodes (docs/sessions.md); used when `network` is set.
    public var sessions = NodeSessionsConfiguration()

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, dataDirectory, database, listen, notaryName, notaryKeyFile, notary, parties, rpcUsers, rpcLogin, hospital, maxWritesPerCommit, maxBodyBytes, maxBodyBytesInFlight, http, ha, network, sessions
    }

    public static let defaultNotaryName = "O=Hawser Notary, L=London, C=GB"
    public static let defaultNotaryKeyFile = "notary.key"

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NodeConfiguration()
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? d.name
        dataDirectory = try c.decodeIfPresent(String.self, forKey: .dataDirectory) ?? d.dataDirectory
        database = try c.decodeIfPresent(NodeDatabaseConfiguration.self, forKey: .database) ?? d.database
        listen = try c.decodeIfPresent(NotaryConfiguration.Listen.self, forKey: .listen) ?? d.listen
        notaryName = try c.decodeIfPresent(String.self, forKey: .notaryName)
        notaryKeyFile = try c.decodeIfPresent(String.self, forKey: .notaryKeyFile)
        notary = try c.decodeIfPresent(NodeNotaryConfiguration.self, forKey: .notary) ?? d.notary
        parties = try c.decodeIfPresent([Party].self, forKey: .parties) ?? d.parties
        rpcUsers = try c.decodeIfPresent([RPCUser].self, forKey: .rpcUsers) ?? d.rpcUsers
        rpcLogin = try c.decodeIfPresent(RPCLogin.self, forKey: .rpcLogin) ?? d.rpcLogin
        hospital = try c.decodeIfPresent(Hospital.self, forKey: .hospital) ?? d.hospital
        maxWritesPerCommit = try c.decodeIfPresent(Int.self, forKey: .maxWritesPerCommit) ?? d.maxWritesPerCommit
        maxBodyBytes = try c.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? d.maxBodyBytes
        maxBodyBytesInFlight = try c.decodeIfPresent(Int.self, forKey: .maxBodyBytesInFlight) ?? d.maxBodyBytesInFlight
        http = try c.decodeIfPresent(HTTPSettings.self, forKey: .http) ?? d.http
        ha = try c.decodeIfPresent(HAConfiguration.self, forKey: .ha) ?? d.ha
        network = try c.decodeIfPresent(NodeNetworkConfiguration.self, forKey: .network)
        sessions = try c.decodeIfPresent(NodeSessionsConfiguration.self, forKey: .sessions) ?? d.sessions
    }

    /// Every invalid value, one sentence each; relative file names taken from the current directory.
    public var problems: [String] { problems(baseDirectory: nil) }

    /// Every invalid value, one sentence each. `baseDirectory`: the directory relative file names
    /// in the configuration point into (the configuration file's); nil: the current directory.
    public func problems(baseDirectory: String?) -> [String] {
        var out = [String]()
        if name.trimmingCharacters(in: .whitespaces).isEmpty { out.append("name must not be empty or blank") }
        if dataDirectory.isEmpty { out.append("dataDirectory must not be empty") }
        if listen.host.isEmpty { out.append("listen.host must not be empty") }
        if !(0...65_535).contains(listen.port) { out.append("listen.port must be 0...65535 (0 picks a free port)") }
        if notaryName?.isEmpty == true { out.append("notaryName must not be empty") }
        if notaryKeyFile?.isEmpty == true { out.append("notaryKeyFile must not be empty") }
        if notary.kind == .remote && (notaryName != nil || notaryKeyFile != nil) {
            out.append("notaryName and notaryKeyFile configure the embedded notary; a remote one is named by notary.name and notary.publicKey")
        }
        out += notary.problems
        out += database.problems()
        if parties.isEmpty { out.append("parties is empty: flows would have nobody to act for") }
        let names = parties.map(\.name)
        if Set(names).count != names.count { out.append("parties: each name may appear once") }
        // Blank as the node's own name is (a party named " " ran, found from outside).
        for party in parties where party.name.trimmingCharacters(in: .whitespaces).isEmpty || party.keyFile.isEmpty {
            out.append("parties: every party needs a name (not blank) and a keyFile")
        }
        if rpcUsers.isEmpty { out.append("rpcUsers is empty: nobody could use the RPC API") }
        let users = rpcUsers.map(\.username)
        if Set(users).count != users.count { out.append("rpcUsers: each username may appear once") }
        for user in rpcUsers { out += user.problems }
        out += rpcLogin.problems
        out += hospital.policy.problems
        if maxWritesPerCommit < 1 { out.append("maxWritesPerCommit must be at least 1") }
        if maxBodyBytes < 1024 { out.append("maxBodyBytes must be at least 1024") }
        if maxBodyBytesInFlight < maxBodyBytes {
            out.append("maxBodyBytesInFlight must be at least maxBodyBytes: a body of the largest size must fit")
        }
        out += ha.problems(role: "node", baseDirectory: baseDirectory)
        out += network?.problems(rpcPort: listen.port) ?? []
        if network == nil, ha.mode == .hotHot, ha.roles?.contains(.p2p) == true {
            out.append("ha.roles names p2p, which takes peers' messages: it needs a network section")
        }
        out += sessions.settings.problems
        if ha.mode.stands && notary.kind != .remote {
            out.append("ha.mode \(ha.mode.rawValue) needs notary.kind remote: an embedded notary's log and store cannot be shared by several processes")
        }
        return out + http.problems(section: "http")
    }

    /// The connection caps of the node's listeners (`OpenFileLimit`).
    public var connectionCaps: [OpenFileLimit.Cap] {
        [("http.maxConnections", http.maxConnections)] + (network.map { [("network.listen.maxConnections", $0.listen.maxConnections)] } ?? [])
    }

    /// Reads and validates a configuration file.
    public static func load(_ path: String) throws -> NodeConfiguration {
        try ConfigurationFile.load(path, unknownOptions: unknownKeys) { configuration, base in configuration.problems(baseDirectory: base) }
    }

    public func save(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(self) + Data("\n".utf8)).write(to: URL(fileURLWithPath: path))
    }

    private static func unknownKeys(in data: Data) -> [String] {
        UnknownOptions.find(in: data, known: [
            "": UnknownOptions.keys(CodingKeys.self),
            "listen": ["host", "port"],
            "parties[]": UnknownOptions.keys(Party.CodingKeys.self),
            "rpcUsers[]": ["username", "passwordHash", "permissions"],
            "hospital": UnknownOptions.keys(Hospital.CodingKeys.self),
            "notary": UnknownOptions.keys(NodeNotaryConfiguration.CodingKeys.self),
            "database": UnknownOptions.keys(NodeDatabaseConfiguration.CodingKeys.self),
            "http": UnknownOptions.keys(HTTPSettings.CodingKeys.self),
            "rpcLogin": UnknownOptions.keys(RPCLogin.CodingKeys.self),
            "ha": UnknownOptions.keys(HAConfiguration.CodingKeys.self),
            "ha.election": UnknownOptions.keys(ElectionSettings.CodingKeys.self),
            "ha.bus": UnknownOptions.keys(BusSettings.CodingKeys.self),
            "network": UnknownOptions.keys(NodeNetworkConfiguration.CodingKeys.self),
            "network.listen": UnknownOptions.keys(NodeNetworkConfiguration.Listen.CodingKeys.self),
            "sessions": UnknownOptions.keys(NodeSessionsConfiguration.CodingKeys.self),
        ])
    }
}
