import Foundation
import HawserCore
import Notary

/// Configuration problems found at start-up, one sentence each.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String { "invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n") }
}

/// A notary's configuration file (JSON). docs/configuration.md documents every field; unknown
/// fields are refused so that a misspelt option cannot be silently ignored.
public struct NotaryConfiguration: Codable, Sendable, Equatable {
    public struct Listen: Codable, Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 8080
        enum CodingKeys: String, CodingKey, CaseIterable { case host, port }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            host = try c.decodeIfPresent(String.self, forKey: .host) ?? host
            port = try c.decodeIfPresent(Int.self, forKey: .port) ?? port
        }
    }
    public struct AuthorisedParty: Codable, Sendable, Equatable {
        public var name: String
        public var publicKey: String
        enum CodingKeys: String, CodingKey, CaseIterable { case name, publicKey }
        public init(name: String, publicKey: String) {
            self.name = name
            self.publicKey = publicKey
        }
    }
    public struct Limits: Codable, Sendable, Equatable {
        // The notary's own limits take NotaryLimits' defaults; the HTTP ones are defined here.
        public var maxStateRefs = NotaryLimits().maxStateRefs
        public var maxBatchRequests = 1_000
        public var maxBodyBytes = 8 * 1024 * 1024
        /// The bytes of request bodies the HTTP API takes at once, over all connections (`BodyBudget`).
        public var maxBodyBytesInFlight = 16 * 1024 * 1024
        public var maxRequestsPerLogEntry = NotaryLimits().maxRequestsPerLogEntry
        public var maxEntriesPerApply = NotaryLimits().maxEntriesPerApply
        public var requestTimeoutMillis = Int(NotaryLimits().requestTimeout.components.seconds * 1000)
        enum CodingKeys: String, CodingKey, CaseIterable {
            case maxStateRefs, maxBatchRequests, maxBodyBytes, maxBodyBytesInFlight, maxRequestsPerLogEntry, maxEntriesPerApply, requestTimeoutMillis
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            maxStateRefs = try c.decodeIfPresent(Int.self, forKey: .maxStateRefs) ?? maxStateRefs
            maxBatchRequests = try c.decodeIfPresent(Int.self, forKey: .maxBatchRequests) ?? maxBatchRequests
            maxBodyBytes = try c.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? maxBodyBytes
            maxBodyBytesInFlight = try c.decodeIfPresent(Int.self, forKey: .maxBodyBytesInFlight) ?? maxBodyBytesInFlight
            maxRequestsPerLogEntry = try c.decodeIfPresent(Int.self, forKey: .maxRequestsPerLogEntry) ?? maxRequestsPerLogEntry
            maxEntriesPerApply = try c.decodeIfPresent(Int.self, forKey: .maxEntriesPerApply) ?? maxEntriesPerApply
            requestTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .requestTimeoutMillis) ?? requestTimeoutMillis
        }
    }

    /// The notary's legal name, served with its public key.
    public var name = "O=Hawser Notary, L=London, C=GB"
    /// The notary's key file, relative to the configuration file's directory.
    public var keyFile = "notary.key"
    /// Where the log and the replica's database live, relative to the configuration file's directory.
    public var dataDirectory = "data"
    public var listen = Listen()
    /// Parties allowed to notarise; requests from anyone else are refused with `unknown_party`.
    public var authorisedParties: [AuthorisedParty] = []
    /// Accept any party that signs with the key it names (open notary; for demos and tests).
    public var acceptAnyParty = false
    public var limits = Limits()
    /// Where the request log lives: embedded (default) or a JetStream stream shared by a cluster.
    public var log = LogConfiguration()
    /// How many connections the HTTP API holds open, and how long a peer may take to send a request.
    public var http = HTTPSettings()
    /// Where the log and the store live: SQLite files in `dataDirectory` (the default) or PostgreSQL.
    public var database = NodeDatabaseConfiguration()
    /// High availability: single (the default), or hot-warm or hot-cold on a shared PostgreSQL database.
    public var ha = HAConfiguration()
    /// The gRPC listener; nil (the default): HTTP only.
    public var grpc: GRPCConfiguration?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, keyFile, dataDirectory, listen, authorisedParties, acceptAnyParty, limits, log, http, database, ha, grpc
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NotaryConfiguration()
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? d.name
        keyFile = try c.decodeIfPresent(String.self, forKey: .keyFile) ?? d.keyFile
        dataDirectory = try c.decodeIfPresent(String.self, forKey: .dataDirectory) ?? d.dataDirectory
        listen = try c.decodeIfPresent(Listen.self, forKey: .listen) ?? d.listen
        authorisedParties = try c.decodeIfPresent([AuthorisedParty].self, forKey: .authorisedParties) ?? d.authorisedParties
        acceptAnyParty = try c.decodeIfPresent(Bool.self, forKey: .acceptAnyParty) ?? d.acceptAnyParty
        limits = try c.decodeIfPresent(Limits.self, forKey: .limits) ?? d.limits
        log = try c.decodeIfPresent(LogConfiguration.self, forKey: .log) ?? d.log
        http = try c.decodeIfPresent(HTTPSettings.self, forKey: .http) ?? d.http
        database = try c.decodeIfPresent(NodeDatabaseConfiguration.self, forKey: .database) ?? d.database
        ha = try c.decodeIfPresent(HAConfiguration.self, forKey: .ha) ?? d.ha
        grpc = try c.decodeIfPresent(GRPCConfiguration.self, forKey: .grpc)
    }

    /// The connection caps of the notary's listeners (`OpenFileLimit`).
    public var connectionCaps: [OpenFileLimit.Cap] {
        [("http.maxConnections", http.maxConnections)] + (grpc.map { [("grpc.maxConnections", $0.maxConnections)] } ?? [])
    }

    /// Reads and validates a configuration file.
    public static func load(_ path: String) throws -> NotaryConfiguration {
        try ConfigurationFile.load(path, unknownOptions: unknownKeys) { configuration, base in configuration.problems(baseDirectory: base) }
    }

    public func save(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(self) + Data("\n".utf8)).write(to: URL(fileURLWithPath: path))
    }

    /// Every invalid value, one sentence each; relative file names taken from the current directory.
    public var problems: [String] { problems(baseDirectory: nil) }

    /// Every invalid value, one sentence each. `baseDirectory`: the directory relative file names
    /// in the configuration point into (the configuration file's); nil: the current directory.
    public func problems(baseDirectory: String?) -> [String] {
        var out = [String]()
        if name.trimmingCharacters(in: .whitespaces).isEmpty { out.append("name must not be empty or blank") }
        if keyFile.isEmpty { out.append("keyFile must not be empty") }
        if dataDirectory.isEmpty { out.append("dataDirectory must not be empty") }
        if listen.host.isEmpty { out.append("listen.host must not be empty") }
        if !(0...65_535).contains(listen.port) { out.append("listen.port must be 0...65535 (0 picks a free port)") }
        for (i, party) in authorisedParties.enumerated() where party.name.trimmingCharacters(in: .whitespaces).isEmpty {
            out.append("authorisedParties[\(i)].name must not be empty or blank")
        }
        for party in authorisedParties {
            if let key = PublicKey(base64: party.publicKey) {
                if key.hasSmallOrder {
                    out.append("authorisedParties: the key of `\(party.name)` is of small order: signatures can be made for it without its private key")
                }
            } else {
                out.append("authorisedParties: the key of `\(party.name)` is not a base64 Ed25519 public key")
            }
        }
        let names = authorisedParties.map(\.name)
        if Set(names).count != names.count { out.append("authorisedParties: each name may appear once") }
        if authorisedParties.isEmpty && !acceptAnyParty {
            out.append("authorisedParties is empty and acceptAnyParty is false: nobody could notarise")
        }
        if limits.maxBatchRequests < 1 { out.append("limits.maxBatchRequests must be at least 1") }
        if limits.maxBodyBytes < 1024 { out.append("limits.maxBodyBytes must be at least 1024") }
        if limits.maxBodyBytesInFlight < limits.maxBodyBytes {
            out.append("limits.maxBodyBytesInFlight must be at least limits.maxBodyBytes: a body of the largest size must fit")
        }
        if limits.maxRequestsPerLogEntry < limits.maxBatchRequests {
            out.append("limits.maxRequestsPerLogEntry must be at least limits.maxBatchRequests: one batch call is written as one log entry")
        }
        out += database.problems(passwordVariable: NodeDatabaseConfiguration.notaryPasswordVariable)
        if database.kind == .postgres && log.kind != .embedded {
            out.append("database.kind postgres keeps the log in PostgreSQL too: it goes with log.kind embedded, not \(log.kind.rawValue)")
        }
        out += ha.problems(role: "notary", baseDirectory: baseDirectory)
        switch ha.mode {
        case .single: break
        case .hotHot:
            out.append("ha.mode hot-hot is for nodes: a notary is single, hot-warm or hot-cold")
        case .hotWarm, .hotCold:
            // Only PostgreSQL's log and store are fenced: two SQLite stores would be two histories.
            if database.kind != .postgres {
                out.append("ha.mode \(ha.mode.rawValue) needs database.kind postgres: every notary process keeps the log and the store in one shared database")
            }
        }
        out += grpc?.problems(httpPort: listen.port) ?? []
        return out + notaryLimits.problems + log.problems + http.problems(section: "http")
    }

    public var notaryLimits: NotaryLimits {
        var l = NotaryLimits()
        l.maxStateRefs = limits.maxStateRefs
        l.maxRequestsPerLogEntry = limits.maxRequestsPerLogEntry
        l.maxEntriesPerApply = limits.maxEntriesPerApply
        l.requestTimeout = .milliseconds(limits.requestTimeoutMillis)
        return l
    }

    /// The authorised parties, or nil when any party is accepted.
    public var parties: [Party]? {
        acceptAnyParty ? nil : authorisedParties.compactMap { p in PublicKey(base64: p.publicKey).map { Party(name: p.name, publicKey: $0) } }
    }

    private static func unknownKeys(in data: Data) -> [String] {
        UnknownOptions.find(in: data, known: [
            "": UnknownOptions.keys(CodingKeys.self),
            "authorisedParties[]": UnknownOptions.keys(AuthorisedParty.CodingKeys.self),
            "listen": UnknownOptions.keys(Listen.CodingKeys.self),
            "limits": UnknownOptions.keys(Limits.CodingKeys.self),
            "log": UnknownOptions.keys(LogConfiguration.CodingKeys.self),
            "http": UnknownOptions.keys(HTTPSettings.CodingKeys.self),
            "database": UnknownOptions.keys(NodeDatabaseConfiguration.CodingKeys.self),
            "ha": UnknownOptions.keys(HAConfiguration.CodingKeys.self),
            "ha.election": UnknownOptions.keys(ElectionSettings.CodingKeys.self),
            "grpc": UnknownOptions.keys(GRPCConfiguration.CodingKeys.self),
        ])
    }
}
